//! Events published by the shipping context.
