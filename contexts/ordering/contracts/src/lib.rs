//! Events published by the ordering context.
