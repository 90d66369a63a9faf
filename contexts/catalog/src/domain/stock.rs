/// Units on hand and held by reservations. The database keeps `0 <= reserved <= on_hand`
/// by constraint, and every change is a conditional statement (see the inventory adapter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StockLevel {
    pub(crate) on_hand: i64,
    pub(crate) reserved: i64,
}

impl StockLevel {
    pub(crate) fn available(&self) -> i64 {
        self.on_hand - self.reserved
    }
}
