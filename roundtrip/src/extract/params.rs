//! Parameter extractors: every field of `T` is one documented parameter, read from the
//! path, the query string, the headers, the cookies or a form body.
//!
//! The input arrives as strings, so values are read in pydantic's lax mode: `"5"` is a
//! number, `"yes"` a boolean. A repeated query key makes a list where the field is a list,
//! and otherwise the last value wins, as in FastAPI.

use std::borrow::Cow;

use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use http::request::Parts;
use roundtrip_openapi::model::{Parameter, ParameterIn};
use roundtrip_openapi::naming::field_title;
use roundtrip_openapi::schema::{publish, set_title};
use roundtrip_openapi::validate::{LocItem, ParamInfo, ValidationError};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::validation::{TypeValidator, type_validator};
use super::{BodyKind, BodyRejection, body_kind, deserialize_value, read_body, request_parts};
use crate::error::RequestValidationError;
use crate::operation::{OperationContext, OperationInput};

macro_rules! newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name<T>(pub T);

        impl<T> std::ops::Deref for $name<T> {
            type Target = T;
            fn deref(&self) -> &T {
                &self.0
            }
        }

        impl<T> std::ops::DerefMut for $name<T> {
            fn deref_mut(&mut self) -> &mut T {
                &mut self.0
            }
        }
    };
}

newtype!(
    /// Query parameters: each field of `T` is one parameter, required unless it is an
    /// `Option` or has a default.
    ///
    /// ```
    /// # use roundtrip::{Query, HttpUrl};
    /// #[derive(serde::Deserialize, schemars::JsonSchema)]
    /// struct CallbackUrl { callback_url: Option<HttpUrl> }
    /// async fn create(Query(q): Query<CallbackUrl>) { let _ = q.callback_url; }
    /// ```
    Query
);

newtype!(
    /// Path parameters: a struct whose fields are named like the template's
    /// `{parameters}`, or a single value for a path with one parameter.
    Path
);

newtype!(
    /// Headers: each field of `T` is one header. As in FastAPI, underscores become
    /// hyphens, so the field `x_request_id` reads the header `x-request-id`.
    Header
);

newtype!(
    /// Cookies: each field of `T` is one cookie of that name.
    Cookie
);

newtype!(
    /// A form body (`application/x-www-form-urlencoded`, or `multipart/form-data` as
    /// FastAPI also reads it): each field of `T` is one form field, documented under
    /// FastAPI's `Body_<operation id>` component.
    Form
);

/// One kind of parameter: where it is read, and how a field name becomes a wire name.
struct Kind {
    location: &'static str,
    rename: fn(&str) -> String,
}

const QUERY: Kind = Kind {
    location: "query",
    rename: same_name,
};
const PATH: Kind = Kind {
    location: "path",
    rename: same_name,
};
const HEADER: Kind = Kind {
    location: "header",
    rename: header_name,
};
const COOKIE: Kind = Kind {
    location: "cookie",
    rename: same_name,
};
const FORM: Kind = Kind {
    location: "body",
    rename: same_name,
};

fn same_name(name: &str) -> String {
    name.to_owned()
}

/// FastAPI's `convert_underscores`: the field `x_request_id` is the header `x-request-id`.
fn header_name(name: &str) -> String {
    name.replace('_', "-")
}

/// Reads a parameter object: validates `value` (built from the request's strings) and
/// deserializes `T` from it, reporting every error under `kind.location`.
fn from_params<T: DeserializeOwned>(
    kind: &Kind,
    tv: Option<&'static TypeValidator>,
    mut value: Value,
) -> Result<T, RequestValidationError> {
    let prefix = [LocItem::Key(kind.location.to_owned())];
    if let Some(tv) = tv {
        let mut errors = Vec::new();
        tv.validator
            .validate_params(&mut value, &prefix, &mut errors);
        if !errors.is_empty() {
            for error in &mut errors {
                rename_loc(error, kind.rename);
            }
            return Err(RequestValidationError::new(errors));
        }
    }
    deserialize_value(value, prefix.to_vec()).map_err(|err| {
        let keys = tv.map(|tv| tv.validator.secret_keys()).unwrap_or(&[]);
        let mut errors = err.into_errors();
        for error in &mut errors {
            roundtrip_openapi::validate::hide_secrets(error, keys);
        }
        RequestValidationError::new(errors)
    })
}

/// Errors name the parameter as the client sent it (`x-request-id`, not `x_request_id`).
fn rename_loc(error: &mut ValidationError, rename: fn(&str) -> String) {
    if let Some(LocItem::Key(name)) = error.loc.get_mut(1) {
        *name = rename(name);
    }
}

/// Builds the object of strings a parameter struct is validated from. `lookup` returns
/// every value the request carries for a wire name.
fn params_object<'a>(
    params: &[ParamInfo],
    rename: fn(&str) -> String,
    mut lookup: impl FnMut(&str) -> Vec<Cow<'a, str>>,
) -> Value {
    let mut object = Map::new();
    for param in params {
        let mut values = lookup(&rename(param.name()));
        let value = if param.is_list() {
            if values.is_empty() {
                continue;
            }
            Value::Array(
                values
                    .into_iter()
                    .map(|v| Value::String(v.into_owned()))
                    .collect(),
            )
        } else {
            match values.pop() {
                Some(last) => Value::String(last.into_owned()),
                None => continue,
            }
        };
        object.insert(param.name().to_owned(), value);
    }
    Value::Object(object)
}

fn params_of(tv: Option<&'static TypeValidator>) -> &'static [ParamInfo] {
    tv.map(|tv| tv.validator.params()).unwrap_or_default()
}

fn query_pairs(query: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    url::form_urlencoded::parse(query.as_bytes())
}

fn urlencoded_object(params: &[ParamInfo], encoded: &str) -> Value {
    params_object(params, same_name, |name| {
        query_pairs(encoded)
            .filter(|(k, _)| k == name)
            .map(|(_, v)| Cow::Owned(v.into_owned()))
            .collect()
    })
}

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned + JsonSchema + 'static,
    S: Send + Sync,
{
    type Rejection = RequestValidationError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let tv = type_validator::<T>().ok();
        if tv.is_none_or(|tv| tv.serde_covers)
            && let Ok(value) = serde_urlencoded::from_str::<T>(query)
        {
            return Ok(Query(value));
        }
        let object = urlencoded_object(params_of(tv), query);
        from_params(&QUERY, tv, object).map(Query)
    }
}

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + JsonSchema + Send + 'static,
    S: Send + Sync,
{
    type Rejection = RequestValidationError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let tv = type_validator::<T>().ok();
        if tv.is_none_or(|tv| tv.serde_covers)
            && let Ok(axum::extract::Path(value)) =
                axum::extract::Path::<T>::from_request_parts(parts, state).await
        {
            return Ok(Path(value));
        }
        let raw: Vec<(String, String)> = match RawPathParams::from_request_parts(parts, state).await
        {
            Ok(raw) => raw
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            Err(_) => Vec::new(),
        };
        let is_object = tv.is_some_and(|tv| !tv.validator.params().is_empty());
        if is_object || tv.is_none() {
            let object = Value::Object(
                raw.into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect(),
            );
            return from_params(&PATH, tv, object).map(Path);
        }
        // A single value (`Path<i64>`): validated under the template's parameter name.
        let (name, raw_value) = raw.into_iter().next().unwrap_or_default();
        let loc = vec![LocItem::Key("path".to_owned()), LocItem::Key(name)];
        let mut value = Value::String(raw_value);
        if let Some(tv) = tv {
            let mut errors = Vec::new();
            tv.validator.validate(&mut value, &loc, &mut errors);
            if !errors.is_empty() {
                return Err(RequestValidationError::new(errors));
            }
        }
        deserialize_value(value, loc).map(Path)
    }
}

impl<T, S> FromRequestParts<S> for Header<T>
where
    T: DeserializeOwned + JsonSchema + 'static,
    S: Send + Sync,
{
    type Rejection = RequestValidationError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let tv = type_validator::<T>().ok();
        let headers = &parts.headers;
        let object = params_object(params_of(tv), header_name, |name| {
            headers
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()))
                .collect()
        });
        from_params(&HEADER, tv, object).map(Header)
    }
}

/// The cookies of a request as name/value pairs, from every `Cookie` header.
fn cookie_pairs(parts: &Parts) -> Vec<(String, String)> {
    parts
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .flat_map(|h| {
            String::from_utf8_lossy(h.as_bytes())
                .split(';')
                .filter_map(|pair| {
                    let (name, value) = pair.split_once('=')?;
                    let value = value.trim();
                    let value = value
                        .strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .unwrap_or(value);
                    Some((name.trim().to_owned(), value.to_owned()))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

impl<T, S> FromRequestParts<S> for Cookie<T>
where
    T: DeserializeOwned + JsonSchema + 'static,
    S: Send + Sync,
{
    type Rejection = RequestValidationError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let tv = type_validator::<T>().ok();
        let cookies = cookie_pairs(parts);
        let object = params_object(params_of(tv), same_name, |name| {
            cookies
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| Cow::Owned(v.clone()))
                .collect()
        });
        from_params(&COOKIE, tv, object).map(Cookie)
    }
}

impl<T, S> FromRequest<S> for Form<T>
where
    T: DeserializeOwned + JsonSchema + 'static,
    S: Send + Sync,
{
    type Rejection = BodyRejection;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let kind = body_kind(req.headers());
        if let BodyKind::Other(content_type) = kind {
            return Err(BodyRejection::unsupported(
                &content_type,
                "application/x-www-form-urlencoded",
            ));
        }
        let tv = type_validator::<T>().ok();
        let content_type = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        // FastAPI reads `Form` fields from either encoding.
        let object = if is_multipart(&content_type) {
            let parts = request_parts(req, &content_type).await?;
            params_object(params_of(tv), same_name, |name| {
                parts
                    .iter()
                    .filter(|p| p.name == name)
                    .map(|p| match &p.filename {
                        Some(filename) => Cow::Owned(filename.clone()),
                        None => Cow::Owned(p.text().into_owned()),
                    })
                    .collect()
            })
        } else {
            let bytes = read_body(req).await?;
            let text = String::from_utf8_lossy(&bytes);
            urlencoded_object(params_of(tv), &text)
        };
        from_params(&FORM, tv, object)
            .map(Form)
            .map_err(BodyRejection::Invalid)
    }
}

fn is_multipart(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("multipart/form-data"))
}

/// Documents every property of `T`'s object schema as a parameter in `location`.
fn describe_object<T: JsonSchema + 'static>(
    ctx: &mut OperationContext<'_>,
    location: ParameterIn,
    rename: fn(&str) -> String,
) {
    let object = ctx.registry().parameter_object_for::<T>();
    ctx.add_parameters_from_object(location, &object, rename);
    if let Err(err) = type_validator::<T>() {
        ctx.error(err);
    }
}

impl<T: JsonSchema + 'static> OperationInput for Query<T> {
    fn describe(ctx: &mut OperationContext<'_>) {
        describe_object::<T>(ctx, ParameterIn::Query, same_name);
    }
}

impl<T: JsonSchema + 'static> OperationInput for Header<T> {
    fn describe(ctx: &mut OperationContext<'_>) {
        describe_object::<T>(ctx, ParameterIn::Header, header_name);
    }
}

impl<T: JsonSchema + 'static> OperationInput for Cookie<T> {
    fn describe(ctx: &mut OperationContext<'_>) {
        describe_object::<T>(ctx, ParameterIn::Cookie, same_name);
    }
}

impl<T: JsonSchema + 'static> OperationInput for Path<T> {
    fn describe(ctx: &mut OperationContext<'_>) {
        let schema = ctx.registry().parameter_object_for::<T>();
        if schema.get("properties").is_some() {
            ctx.add_parameters_from_object(ParameterIn::Path, &schema, same_name);
        } else {
            let names = ctx.path_params().to_vec();
            let items: Vec<Value> = match schema.get("prefixItems").and_then(Value::as_array) {
                Some(items) => items.clone(),
                None => vec![schema],
            };
            for (name, item) in names.iter().zip(items) {
                let mut item = publish(&item);
                set_title(&mut item, &field_title(name));
                ctx.add_parameter(Parameter {
                    name: name.clone(),
                    location: ParameterIn::Path,
                    description: None,
                    required: true,
                    deprecated: false,
                    schema: Some(item),
                    example: None,
                    extensions: Default::default(),
                });
            }
        }
        if let Err(err) = type_validator::<T>() {
            ctx.error(err);
        }
    }
}

impl<T: JsonSchema + 'static> OperationInput for Form<T> {
    fn describe(ctx: &mut OperationContext<'_>) {
        let name = format!("Body_{}", ctx.operation_id());
        let mut schema = publish(&ctx.registry().inline_schema_for::<T>());
        if let Value::Object(map) = &mut schema {
            map.insert("title".to_owned(), Value::String(name.clone()));
        }
        let reference = ctx.registry().insert(&name, schema);
        ctx.set_request_body("application/x-www-form-urlencoded", reference, true);
        if let Err(err) = type_validator::<T>() {
            ctx.error(err);
        }
    }
}

impl<T> OperationInput for axum::extract::Query<T> {}
impl<T> OperationInput for axum::extract::Path<T> {}
impl<T> OperationInput for axum::Form<T> {}
