//! Response models: an answer filtered to an output type, unset fields left out, and one
//! type with different input and output schemas (`Item-Input`, `Item-Output`).
//!
//! The models carry no doc comment: FastAPI's have no docstring, so their components
//! have no description. A field's doc comment is its description.

use roundtrip::{HttpError, Json, Path};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Value, json};

#[derive(Serialize, Deserialize, JsonSchema)]
pub(crate) struct UserIn {
    username: String,
    password: String,
    email: String,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub(crate) struct UserOut {
    username: String,
    email: String,
}

/// Answers the user as given; the route's `response_model::<UserOut>()` drops the
/// password.
pub(crate) async fn create_user(Json(user): Json<UserIn>) -> Json<UserIn> {
    Json(user)
}

fn default_price() -> f64 {
    10.5
}

#[derive(Deserialize, JsonSchema)]
pub(crate) struct Item {
    name: String,
    description: Option<String>,
    #[serde(default = "default_price")]
    price: f64,
    #[serde(default)]
    tags: Vec<String>,
    /// Only in answers: the input schema has no such field (Item-Input, Item-Output).
    #[serde(skip_deserializing)]
    #[schemars(extend("readOnly" = true))]
    #[expect(
        dead_code,
        reason = "documents the computed field; it is computed when written"
    )]
    price_with_tax: f64,
}

impl Item {
    /// pydantic's `computed_field`: the price with 20 % tax, to the cent.
    fn price_with_tax(&self) -> f64 {
        (self.price * 1.2 * 100.0).round() / 100.0
    }
}

/// Written with the computed field, in pydantic's field order.
impl Serialize for Item {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Answer<'a> {
            name: &'a str,
            description: &'a Option<String>,
            price: f64,
            tags: &'a [String],
            price_with_tax: f64,
        }
        Answer {
            name: &self.name,
            description: &self.description,
            price: self.price,
            tags: &self.tags,
            price_with_tax: self.price_with_tax(),
        }
        .serialize(serializer)
    }
}

/// What the handler knows of each item: only the fields that were set.
fn stored(item_id: &str) -> Option<Value> {
    match item_id {
        "foo" => Some(json!({"name": "Foo", "price": 50.2})),
        "bar" => Some(
            json!({"name": "Bar", "description": "The bartenders", "price": 62, "tags": ["drinks"]}),
        ),
        _ => None,
    }
}

/// Answers the stored fields; the route's `response_model::<Item>()` with
/// `response_model_exclude_unset()` adds the computed field and nothing unset.
pub(crate) async fn read_item(Path(item_id): Path<String>) -> Result<Json<Value>, HttpError> {
    stored(&item_id)
        .map(Json)
        .ok_or_else(|| HttpError::not_found("Item not found"))
}

/// Defaults filled in, computed field in the answer.
pub(crate) async fn replace_item(
    Path(_item_id): Path<String>,
    Json(item): Json<Item>,
) -> Json<Item> {
    Json(item)
}
