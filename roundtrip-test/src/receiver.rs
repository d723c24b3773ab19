//! A loopback HTTP receiver that records deliveries and verifies their signatures.
