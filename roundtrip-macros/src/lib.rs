//! Proc-macros for roundtrip: a thin shell that records what only the compiler sees.
//!
//! Rust keeps doc comments out of the running program, so a handler's doc comment (its
//! FastAPI docstring) cannot be read at run time without help. `#[roundtrip::handler]`
//! leaves the function untouched and records its doc comment, keyed by the function's
//! type name, for the app to find when it documents the operation. It also checks what
//! the compiler's own message cannot say plainly: that the argument reading the request
//! body comes last, naming the argument that must move.

use proc_macro::TokenStream;
use quote::ToTokens;
use quote::quote;
use syn::{
    Expr, ExprLit, FnArg, GenericArgument, ItemFn, Lit, Meta, PathArguments, Type,
    parse_macro_input,
};

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
    if let Some(error) = argument_order(&function) {
        return error.to_compile_error().into();
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

/// The extractors that read the request body, which axum lets only the last argument do.
const BODY_EXTRACTORS: &[&str] = &[
    "Json",
    "Form",
    "Multipart",
    "Bytes",
    "String",
    "Body",
    "Request",
    "RawForm",
];

/// The name of the extractor a type is (`Json` for `Json<Invoice>`, `Option<Json<..>>` and
/// `Result<Json<..>, _>` alike).
fn extractor_name(ty: &Type) -> Option<String> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    let name = last.ident.to_string();
    if name == "Option" || name == "Result" {
        if let PathArguments::AngleBracketed(args) = &last.arguments
            && let Some(GenericArgument::Type(inner)) = args.args.first()
        {
            return extractor_name(inner);
        }
        return None;
    }
    Some(name)
}

/// Tokens as a person writes them: `Json(invoice): Json<Invoice>`.
fn written(tokens: &impl ToTokens) -> String {
    let mut text = tokens.to_token_stream().to_string();
    for (spaced, tight) in [
        (" (", "("),
        ("( ", "("),
        (" )", ")"),
        (" <", "<"),
        ("< ", "<"),
        (" >", ">"),
        (" ,", ","),
        (" :: ", "::"),
        (" : ", ": "),
        ("& ", "&"),
    ] {
        text = text.replace(spaced, tight);
    }
    text
}

/// An argument that reads the body but is not the last: the error that names it.
fn argument_order(function: &ItemFn) -> Option<syn::Error> {
    let inputs: Vec<&FnArg> = function.sig.inputs.iter().collect();
    let (last, rest) = inputs.split_last()?;
    for arg in rest {
        let FnArg::Typed(typed) = arg else { continue };
        let Some(name) = extractor_name(&typed.ty) else {
            continue;
        };
        if BODY_EXTRACTORS.contains(&name.as_str()) {
            return Some(syn::Error::new_spanned(
                arg,
                format!(
                    "`{}` reads the request body, so it must be the last argument of `{}`: move `{}` after `{}`",
                    written(&typed.ty),
                    function.sig.ident,
                    written(arg),
                    written(last)
                ),
            ));
        }
    }
    None
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_argument_before_another_is_named_with_where_to_move_it() {
        let function: ItemFn = syn::parse_quote! {
            async fn create_invoice(
                Json(invoice): Json<Invoice>,
                notify: Notify<InvoiceEvent>,
            ) -> Json<Value> { todo!() }
        };
        let error = argument_order(&function).map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some(
                "`Json<Invoice>` reads the request body, so it must be the last argument of \
                 `create_invoice`: move `Json(invoice): Json<Invoice>` after \
                 `notify: Notify<InvoiceEvent>`"
            )
        );
    }

    #[test]
    fn body_extractors_last_or_wrapped_are_accepted_or_found() {
        let fine: ItemFn = syn::parse_quote! {
            async fn f(q: Query<Q>, notify: Notify<P>, body: Option<Json<B>>) -> String { todo!() }
        };
        assert!(argument_order(&fine).is_none());
        let wrapped: ItemFn = syn::parse_quote! {
            async fn f(body: Option<axum::Json<B>>, q: Query<Q>) -> String { todo!() }
        };
        let error = argument_order(&wrapped)
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.starts_with("`Option<axum::Json<B>>` reads the request body"),
            "{error}"
        );
    }
}
