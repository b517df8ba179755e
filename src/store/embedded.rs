//! The embedded store (redb): written next.
