//! roundtrip: typed handlers, an OpenAPI 3.1 document, FastAPI-style validation, and callbacks that are really delivered.
