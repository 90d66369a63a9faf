//! `emporium serve | migrate | openapi | seed`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use emporium::config::{parse_contexts, Config};
use emporium::{contexts, openapi, telemetry, Application};

#[derive(Parser)]
#[command(name = "emporium", version, about = "Emporium commerce backend")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve {
        /// Contexts to run in this process, e.g. `identity,catalog` (default: all; also EMPORIUM_CONTEXTS).
        #[arg(long)]
        contexts: Option<String>,
    },
    /// Route `/api/v1/<context>/` to the processes in EMPORIUM_GATEWAY_UPSTREAMS.
    Gateway,
    /// Apply every enabled context's migrations and exit.
    Migrate,
    /// Load a demo catalog (categories, products, stock) into the catalog database.
    Seed,
    /// Write the OpenAPI and AsyncAPI documents, and the admin console's API client.
    Openapi {
        #[arg(long, default_value = "openapi/openapi.json")]
        output: PathBuf,
        #[arg(long, default_value = "admin/api.js")]
        admin_client: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut config = match Config::from_env() {
        Ok(c) => c,
        Err(errors) => {
            for e in errors {
                eprintln!("configuration error: {e}");
            }
            return ExitCode::from(2);
        }
    };
    if let Some(Command::Serve {
        contexts: Some(list),
    }) = &cli.command
    {
        match parse_contexts(list) {
            Ok(list) => config.contexts = list,
            Err(e) => {
                eprintln!("configuration error: --contexts: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let service = match &cli.command {
        Some(Command::Gateway) => "emporium-gateway".to_owned(),
        _ if config.contexts.len() == emporium::config::ContextName::ALL.len() => {
            "emporium".to_owned()
        }
        _ => {
            let names: Vec<&str> = config.contexts.iter().map(|c| c.as_str()).collect();
            format!("emporium-{}", names.join("+"))
        }
    };
    let telemetry = match telemetry::init(
        config.log_format,
        config
            .otlp_endpoint
            .as_deref()
            .map(|e| (e, service.as_str())),
    ) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("configuration error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve { contexts: None }) {
            Command::Serve { .. } => {
                let app = Application::build(config).await?;
                app.run_until_stopped().await
            }
            Command::Gateway => emporium::gateway::run(config).await,
            Command::Migrate => {
                for &ctx in &config.contexts {
                    contexts::open_database(&config, ctx).await?.close().await;
                }
                Ok(())
            }
            Command::Seed => {
                let db = contexts::open_database(&config, emporium::config::ContextName::Catalog)
                    .await?;
                let bus = emporium::app::connect_bus(&config).await?;
                let created = catalog::seed(db.clone(), bus).await?;
                db.close().await;
                println!("seeded {created} products (events are published when the server runs)");
                let db = contexts::open_database(&config, emporium::config::ContextName::Ordering)
                    .await?;
                let rates = ordering::seed(db.clone()).await?;
                db.close().await;
                println!("seeded {rates} tax and shipping rates (DE, AT, FR, NL, BE; EUR) and codes (WELCOME-10)");
                Ok(())
            }
            Command::Openapi {
                output,
                admin_client,
            } => {
                if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                let document = openapi::to_json()?;
                std::fs::write(&output, &document)?;
                println!("wrote {}", output.display());
                std::fs::write(&admin_client, emporium::admin::client_js(&document)?)?;
                println!("wrote {}", admin_client.display());
                let events = output.with_file_name("asyncapi.json");
                std::fs::write(&events, emporium::asyncapi::to_json()?)?;
                println!("wrote {}", events.display());
                Ok(())
            }
        }
    });
    drop(runtime);
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
