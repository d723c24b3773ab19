//! `multipart/form-data` bodies: form fields and uploaded files, as FastAPI's `File()`
//! and `UploadFile`, documented under FastAPI's `Body_<operation id>` component with
//! `format: binary` for each file.
//!
//! ```
//! use roundtrip::extract::{Multipart, UploadFile};
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct Upload {
//!     file: UploadFile,
//!     #[schemars(length(min = 1))]
//!     token: String,
//!     attachments: Option<Vec<UploadFile>>,
//! }
//!
//! async fn upload(Multipart(upload): Multipart<Upload>) -> String {
//!     format!("{} bytes", upload.file.len())
//! }
//! ```
//!
//! The body is read as it arrives, within the app's body limit (413 beyond it): text
//! fields are held in memory and validated against the schema they publish, with
//! FastAPI's errors under `loc: ["body", <field>]`; a file stays in memory up to the spool
//! threshold (1 MiB) and is written to a temporary file past it, so an upload's size
//! does not become the server's memory. Parsing is `multer`'s (linear time), within
//! [`MultipartLimits`]: the boundary's length (70, checked before the body is read), the
//! number of parts and the size of each, each with its own 413 or 422.

mod de;
mod parts;
mod upload;

use axum::extract::{FromRequest, Request};
use http::header;
use roundtrip_openapi::schema::publish;
use roundtrip_openapi::validate::{LocItem, ValidationError};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use self::de::{Entry, PartsDeserializer};
pub use self::parts::{DEFAULT_SPOOL_THRESHOLD, MAX_BOUNDARY_LEN, MultipartLimits};
pub(crate) use self::parts::{Part, request_parts};
use self::upload::SpoolScope;
pub use self::upload::{UploadFile, UploadReader};
use super::BodyRejection;
use super::validation::type_validator;
use crate::error::RequestValidationError;
use crate::operation::{OperationContext, OperationInput};

const MEDIA_TYPE: &str = "multipart/form-data";

/// A `multipart/form-data` body: each field of `T` is one form field or one file
/// ([`UploadFile`], `Option<UploadFile>`, `Vec<UploadFile>`).
#[derive(Debug, Clone, Default)]
pub struct Multipart<T>(pub T);

impl<T> std::ops::Deref for Multipart<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Multipart<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

fn body_loc() -> LocItem {
    LocItem::Key("body".to_owned())
}

fn invalid(errors: Vec<ValidationError>) -> BodyRejection {
    BodyRejection::Invalid(RequestValidationError::new(errors))
}

/// Validates the text fields (and the presence of files) of `T`, then builds it.
fn from_parts<T: DeserializeOwned + JsonSchema + 'static>(
    parts: Vec<Part>,
) -> Result<T, BodyRejection> {
    let tv = type_validator::<T>().ok();
    let params = tv.map(|tv| tv.validator.params()).unwrap_or_default();
    let mut parts: Vec<Option<Part>> = parts.into_iter().map(Some).collect();
    let mut object = Map::new();
    let mut files: Vec<(String, Vec<Part>, bool)> = Vec::new();
    for param in params {
        let mine: Vec<Part> = parts
            .iter_mut()
            .filter(|p| p.as_ref().is_some_and(|p| p.name == param.name()))
            .filter_map(Option::take)
            .collect();
        if mine.is_empty() {
            continue;
        }
        // A file is validated as the string the schema says it is (its name); its
        // content joins the value after validation.
        let as_text = |p: &Part| {
            Value::String(match &p.filename {
                Some(name) => name.clone(),
                None => p.text().into_owned(),
            })
        };
        let value = if param.is_list() {
            Value::Array(mine.iter().map(as_text).collect())
        } else {
            mine.last().map(as_text).unwrap_or(Value::Null)
        };
        object.insert(param.name().to_owned(), value);
        if mine.iter().any(Part::is_file) {
            files.push((param.name().to_owned(), mine, param.is_list()));
        }
    }
    let mut value = Value::Object(object);
    if let Some(tv) = tv {
        let mut errors = Vec::new();
        tv.validator
            .validate_params(&mut value, &[body_loc()], &mut errors);
        if !errors.is_empty() {
            return Err(invalid(errors));
        }
    }
    let Value::Object(object) = value else {
        return Err(invalid(Vec::new()));
    };
    let mut entries: Vec<(String, Entry)> = Vec::with_capacity(object.len());
    for (name, text) in object {
        let entry = match files.iter().position(|(n, _, _)| *n == name) {
            Some(i) => {
                let (_, mut mine, list) = files.swap_remove(i);
                if list {
                    Entry::Files(mine)
                } else {
                    // As for text fields, the last part of a name wins.
                    match mine.pop() {
                        Some(part) if part.is_file() => Entry::File(part),
                        _ => Entry::Text(text),
                    }
                }
            }
            None => Entry::Text(text),
        };
        entries.push((name, entry));
    }
    let _scope = SpoolScope::new();
    T::deserialize(PartsDeserializer { entries }).map_err(|err| {
        invalid(vec![ValidationError {
            error_type: "value_error".into(),
            loc: vec![body_loc()],
            msg: format!("Value error, {err}"),
            input: Value::Null,
            ctx: None,
        }])
    })
}

impl<T, S> FromRequest<S> for Multipart<T>
where
    T: DeserializeOwned + JsonSchema + 'static,
    S: Send + Sync,
{
    type Rejection = BodyRejection;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        let parts = request_parts(req, &content_type).await?;
        from_parts(parts).map(Multipart)
    }
}

impl<T: JsonSchema + 'static> OperationInput for Multipart<T> {
    fn describe(ctx: &mut OperationContext<'_>) {
        let name = format!("Body_{}", ctx.operation_id());
        let mut schema = publish(&ctx.registry().inline_schema_for::<T>());
        if let Value::Object(map) = &mut schema {
            map.insert("title".to_owned(), Value::String(name.clone()));
        }
        let reference = ctx.registry().insert(&name, schema);
        ctx.set_request_body(MEDIA_TYPE, reference, true);
        if let Err(err) = type_validator::<T>() {
            ctx.error(err);
        }
    }
}

#[cfg(test)]
mod tests {
    mod served {
        use roundtrip_test::TestClient;
        use serde_json::{Value, json};

        use crate::extract::{Multipart, UploadFile};
        use crate::{App, Json, post};

        #[derive(serde::Deserialize, schemars::JsonSchema)]
        struct Upload {
            file: UploadFile,
            #[schemars(length(min = 3))]
            token: String,
            count: Option<i64>,
            notes: Option<UploadFile>,
            attachments: Option<Vec<UploadFile>>,
        }

        async fn text(f: &UploadFile) -> String {
            let bytes = f.bytes().await.expect("an upload in memory reads");
            String::from_utf8_lossy(&bytes).into_owned()
        }

        async fn upload(Multipart(u): Multipart<Upload>) -> Json<Value> {
            let mut attachments = Vec::new();
            for file in u.attachments.unwrap_or_default() {
                attachments.push(text(&file).await);
            }
            let notes = match &u.notes {
                Some(notes) => Some(text(notes).await),
                None => None,
            };
            Json(json!({
                "filename": u.file.filename, "content_type": u.file.content_type,
                "content": text(&u.file).await, "token": u.token, "count": u.count,
                "notes": notes, "attachments": attachments,
            }))
        }

        fn client() -> TestClient {
            let router = App::new()
                .body_limit(64 * 1024)
                .route("/upload", post(upload))
                .into_router()
                .expect("the app builds");
            TestClient::new(router)
        }

        /// A multipart body: `(name, Some(filename), content)` is a file.
        fn body(parts: &[(&str, Option<&str>, &str)]) -> String {
            let mut out = String::new();
            for (name, filename, content) in parts {
                out.push_str("--B0und\r\n");
                match filename {
                    Some(f) => out.push_str(&format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: text/plain\r\n\r\n"
                    )),
                    None => out.push_str(&format!(
                        "Content-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                    )),
                }
                out.push_str(content);
                out.push_str("\r\n");
            }
            out.push_str("--B0und--\r\n");
            out
        }

        async fn send(parts: &[(&str, Option<&str>, &str)]) -> roundtrip_test::TestResponse {
            client()
                .post("/upload")
                .header("content-type", "multipart/form-data; boundary=B0und")
                .body(body(parts))
                .send()
                .await
        }

        #[tokio::test]
        async fn files_and_fields_reach_the_handler() {
            let response = send(&[
                ("token", None, "abcd"),
                ("count", None, "7"),
                ("file", Some("a.txt"), "hello"),
                ("attachments", Some("1.txt"), "one"),
                ("attachments", Some("2.txt"), "two"),
            ])
            .await;
            assert_eq!(response.status(), 200, "{}", response.text());
            assert_eq!(
                response.json::<Value>(),
                json!({
                    "filename": "a.txt", "content_type": "text/plain", "content": "hello",
                    "token": "abcd", "count": 7, "notes": null, "attachments": ["one", "two"],
                })
            );
        }

        #[tokio::test]
        async fn missing_files_and_bad_fields_get_fastapis_422() {
            let response = send(&[("token", None, "ab"), ("count", None, "x")]).await;
            assert_eq!(response.status(), 422);
            assert_eq!(
                response.json::<Value>()["detail"],
                json!([
                    {"type": "missing", "loc": ["body", "file"], "msg": "Field required", "input": null},
                    {"type": "string_too_short", "loc": ["body", "token"],
                     "msg": "String should have at least 3 characters", "input": "ab",
                     "ctx": {"min_length": 3}},
                    {"type": "int_parsing", "loc": ["body", "count"],
                     "msg": "Input should be a valid integer, unable to parse string as an integer",
                     "input": "x"},
                ])
            );
        }

        #[tokio::test]
        async fn a_plain_field_where_a_file_belongs_is_refused() {
            let response = send(&[("token", None, "abcd"), ("file", None, "not a file")]).await;
            assert_eq!(response.status(), 422);
            let detail = &response.json::<Value>()["detail"][0];
            assert_eq!(detail["type"], "value_error");
            assert!(
                detail["msg"]
                    .as_str()
                    .is_some_and(|m| m.contains("Expected UploadFile")),
                "{detail}"
            );
        }

        #[tokio::test]
        async fn other_bodies_are_refused_clearly() {
            let client = client();
            let json = client
                .post("/upload")
                .json(&json!({"token": "abcd"}))
                .send()
                .await;
            assert_eq!(json.status(), 415);
            let no_boundary = client
                .post("/upload")
                .header("content-type", "multipart/form-data")
                .body("x")
                .send()
                .await;
            assert_eq!(no_boundary.status(), 415);
            let malformed = client
                .post("/upload")
                .header("content-type", "multipart/form-data; boundary=B0und")
                .body("--B0und\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nno end")
                .send()
                .await;
            assert_eq!(malformed.status(), 400);
            assert!(
                malformed.text().contains("malformed"),
                "{}",
                malformed.text()
            );
            let big = "x".repeat(100 * 1024);
            let too_large = send(&[("token", None, "abcd"), ("file", Some("big"), &big)]).await;
            assert_eq!(too_large.status(), 413);
        }

        #[tokio::test]
        async fn the_body_is_documented_as_fastapi_documents_files() {
            let doc: Value = client().get("/openapi.json").send().await.json();
            let body = &doc["paths"]["/upload"]["post"]["requestBody"];
            assert_eq!(body["required"], true);
            assert_eq!(
                body["content"]["multipart/form-data"]["schema"]["$ref"],
                "#/components/schemas/Body_upload_upload_post"
            );
            let schema = &doc["components"]["schemas"]["Body_upload_upload_post"];
            assert_eq!(schema["title"], "Body_upload_upload_post");
            assert_eq!(schema["required"], json!(["file", "token"]));
            let props = &schema["properties"];
            assert_eq!(props["file"]["type"], "string");
            assert_eq!(props["file"]["format"], "binary");
            assert_eq!(props["file"]["title"], "File");
            assert_eq!(props["token"]["minLength"], 3);
            let attachments = props["attachments"].to_string();
            assert!(
                attachments.contains(r#""format":"binary""#),
                "{attachments}"
            );
            assert!(doc["components"]["schemas"].get("UploadFile").is_none());
            roundtrip_test::oas::assert_valid_openapi_31(&doc);
        }
    }
}
