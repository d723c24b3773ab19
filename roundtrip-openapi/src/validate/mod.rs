//! Validation of request input against published JSON Schemas, with FastAPI (pydantic) error shapes.
