//! Compiled validators per Rust type, built once and shared by every request.
//!
//! "Documented = enforced": the schema a type publishes is the schema its input is
//! checked against. A type whose schema says nothing that serde does not already check
//! (the common case) is never validated twice: serde's fast path is enough. Types with
//! constraints (ranges, lengths, patterns, formats) get their compiled validator run on
//! every request.

use std::any::TypeId;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{OnceLock, RwLock};

use roundtrip_openapi::schema::SchemaRegistry;
use roundtrip_openapi::validate::Validator;
use schemars::JsonSchema;

/// A payload or response validator, by type, resolved when first needed.
pub(crate) type ValidatorFn = fn() -> Result<&'static TypeValidator, &'static str>;

/// A type's validator and whether serde alone already enforces its schema.
pub(crate) struct TypeValidator {
    pub(crate) validator: Validator,
    pub(crate) serde_covers: bool,
}

type Cache = RwLock<HashMap<TypeId, Result<&'static TypeValidator, &'static str>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The validator of `T`, compiled on first use.
///
/// An error means the type's schema could not be compiled (a pattern that is not a valid
/// regex, say). The app reports it when it is built; an extractor used outside an app falls
/// back to serde alone and logs it once.
pub(crate) fn type_validator<T: JsonSchema + ?Sized + 'static>()
-> Result<&'static TypeValidator, &'static str> {
    let id = TypeId::of::<T>();
    // Every extractor asks on every request: each thread keeps its own copy of the answers,
    // so requests on different cores never touch the shared lock's cache line.
    if let Some(found) = LOCAL.with(|local| local.borrow().get(&id).copied()) {
        return found;
    }
    let found = shared_validator::<T>(id);
    LOCAL.with(|local| local.borrow_mut().insert(id, found));
    found
}

type Answer = Result<&'static TypeValidator, &'static str>;

thread_local! {
    static LOCAL: RefCell<HashMap<TypeId, Answer, BuildHasherDefault<TypeIdHasher>>> =
        RefCell::new(HashMap::default());
}

/// A `TypeId` is already a hash: its hasher keeps what it is fed instead of hashing again.
#[derive(Default)]
struct TypeIdHasher(u64);

impl Hasher for TypeIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

fn shared_validator<T: JsonSchema + ?Sized + 'static>(id: TypeId) -> Answer {
    if let Ok(map) = cache().read()
        && let Some(found) = map.get(&id)
    {
        return *found;
    }
    let compiled = compile::<T>();
    let mut map = match cache().write() {
        Ok(map) => map,
        Err(poisoned) => poisoned.into_inner(),
    };
    *map.entry(id).or_insert(compiled)
}

fn compile<T: JsonSchema + ?Sized>() -> Result<&'static TypeValidator, &'static str> {
    let mut registry = SchemaRegistry::new();
    let schema = registry.schema_for::<T>();
    match Validator::new(&schema, registry.definitions()) {
        Ok(validator) => {
            let serde_covers = validator.serde_covers();
            // Leaked on purpose: one validator per type for the life of the process,
            // so requests borrow it without reference counting.
            Ok(Box::leak(Box::new(TypeValidator {
                validator,
                serde_covers,
            })))
        }
        Err(err) => {
            let message = format!(
                "the schema of `{}` cannot be enforced: {err}",
                std::any::type_name::<T>()
            );
            tracing::error!("{message}");
            Err(Box::leak(message.into_boxed_str()))
        }
    }
}
