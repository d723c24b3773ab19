//! The tour of every foundation feature (FastAPI's `tour.py` in roundtrip).

fn main() {}
