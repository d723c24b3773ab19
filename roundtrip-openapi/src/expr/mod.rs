//! OpenAPI runtime expressions (`{$request.body#/id}`): parse, print, evaluate and lint.
