//! Proc-macros for roundtrip: a thin shell that records what only the compiler sees.
//!
//! Rust keeps doc comments out of the running program, so a handler's doc comment (its
//! FastAPI docstring) cannot be read at run time without help. `#[roundtrip::handler]`
//! leaves the function untouched and records its doc comment, keyed by the function's
//! type name, for the app to find when it documents the operation.

use proc_macro::TokenStream;
use quote::quote;
use syn::{Expr, ExprLit, ItemFn, Lit, Meta, parse_macro_input};

/// Records a handler's doc comment as the operation's description.
///
/// ```ignore
/// /// Create an invoice.
/// ///
/// /// This will (let's imagine) let the API user create an invoice.
/// #[roundtrip::handler]
/// async fn create_invoice(Json(invoice): Json<Invoice>) -> Json<Value> { .. }
/// ```
///
/// The function itself is not changed: it can still be called, and it is registered with
/// `post(create_invoice)` as usual. Generic functions cannot be documented this way (their
/// type name depends on the instantiation); give them `.description(..)` on the route.
#[proc_macro_attribute]
pub fn handler(args: TokenStream, input: TokenStream) -> TokenStream {
    let function = parse_macro_input!(input as ItemFn);
    if !args.is_empty() {
        return syn::Error::new(
            proc_macro2::Span::call_site(),
            "#[roundtrip::handler] takes no arguments; set the summary, tags, status and the rest on the route: `post(handler).status(201)`",
        )
        .to_compile_error()
        .into();
    }
    if !function.sig.generics.params.is_empty() {
        return syn::Error::new_spanned(
            &function.sig.generics,
            "#[roundtrip::handler] cannot record the docs of a generic function; use `.description(..)` on the route",
        )
        .to_compile_error()
        .into();
    }
    let doc = doc_comment(&function);
    let name = &function.sig.ident;
    let expanded = quote! {
        #function

        ::roundtrip::__private::inventory::submit! {
            ::roundtrip::__private::HandlerDoc {
                type_name: || ::core::any::type_name_of_val(&#name),
                doc: #doc,
            }
        }
    };
    expanded.into()
}

/// The `///` lines of an item, joined with newlines, as rustdoc would read them.
fn doc_comment(function: &ItemFn) -> String {
    let lines: Vec<String> = function
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("doc"))
        .filter_map(|attr| match &attr.meta {
            Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    lines.join("\n")
}
