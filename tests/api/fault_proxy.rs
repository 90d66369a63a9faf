//! A TCP proxy for fault injection: put it between a process and PostgreSQL or RabbitMQ, then
//! cut the dependency off (existing connections reset, new ones refused) or hold it (new
//! connections accepted but never answered), and restore it.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Bytes flow both ways.
    Pass = 0,
    /// Existing connections are shut down and closed; new ones are closed at once.
    Refuse = 1,
    /// New connections are accepted and left unanswered; existing ones are shut down.
    Hold = 2,
}

pub struct FaultProxy {
    pub port: u16,
    mode: Arc<AtomicU8>,
    /// Bumped on every cut: each connection's pump watches it and shuts its sockets down.
    cuts: watch::Sender<u64>,
    held: Arc<Mutex<Vec<TcpStream>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `target` (`host:port`).
    pub async fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("proxy bind: {e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        let mode = Arc::new(AtomicU8::new(Mode::Pass as u8));
        let (cuts, _) = watch::channel(0u64);
        let held = Arc::new(Mutex::new(Vec::new()));
        let target = target.to_owned();
        let task = {
            let (mode, cuts, held) = (mode.clone(), cuts.clone(), held.clone());
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    match mode.load(Ordering::SeqCst) {
                        m if m == Mode::Refuse as u8 => drop(client),
                        m if m == Mode::Hold as u8 => {
                            if let Ok(mut h) = held.lock() {
                                h.push(client);
                            }
                        }
                        _ => {
                            let target = target.clone();
                            let cut = cuts.subscribe();
                            tokio::spawn(pump(client, target, cut));
                        }
                    }
                }
            })
        };
        Self {
            port,
            mode,
            cuts,
            held,
            task,
        }
    }

    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
        if mode != Mode::Pass {
            self.cuts.send_modify(|n| *n += 1);
        } else if let Ok(mut h) = self.held.lock() {
            h.clear();
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pump(mut client: TcpStream, target: String, mut cut: watch::Receiver<u64>) {
    let Ok(mut server) = TcpStream::connect(&target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = cut.changed() => {
            // Shut the sockets down before closing them: a reader blocked on either side
            // sees the end at once instead of waiting for a timeout.
            let _ = client.shutdown().await;
            let _ = server.shutdown().await;
        }
    }
}
