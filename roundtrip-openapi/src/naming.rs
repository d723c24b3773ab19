//! The names FastAPI users expect: operation ids, summaries, titles and descriptions.
//!
//! These follow FastAPI's defaults exactly, so that a document written by roundtrip reads
//! the same as the one FastAPI would write for the same API.

/// FastAPI's default operation id: `name + path`, every non-word character replaced by
/// `_`, then `_` and the lower-case method.
///
/// ```
/// use roundtrip_openapi::naming::operation_id;
/// assert_eq!(operation_id("create_invoice", "/invoices/", "post"), "create_invoice_invoices__post");
/// assert_eq!(
///     operation_id("invoice_notification", "{$callback_url}/invoices/{$request.body.id}", "post"),
///     "invoice_notification__callback_url__invoices___request_body_id__post",
/// );
/// ```
pub fn operation_id(name: &str, path: &str, method: &str) -> String {
    let mut id = String::with_capacity(name.len() + path.len() + method.len() + 1);
    id.extend(
        name.chars()
            .chain(path.chars())
            .map(|c| if is_word_char(c) { c } else { '_' }),
    );
    id.push('_');
    id.push_str(&method.to_ascii_lowercase());
    id
}

/// Python's `\w`: letters, digits (in any script) and `_`.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Python's `str.title()`: the first letter of every run of letters upper-cased, the rest
/// lower-cased.
pub fn python_title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut previous_is_cased = false;
    for c in s.chars() {
        if c.is_alphabetic() {
            if previous_is_cased {
                out.extend(c.to_lowercase());
            } else {
                out.extend(c.to_uppercase());
            }
            previous_is_cased = true;
        } else {
            out.push(c);
            previous_is_cased = false;
        }
    }
    out
}

/// The default summary of an operation named `name`: `create_invoice` becomes
/// `Create Invoice`.
pub fn summary_from_name(name: &str) -> String {
    python_title(&name.replace('_', " "))
}

/// The title pydantic gives a field or parameter: `callback_url` becomes `Callback Url`,
/// and the header `x-request-id` becomes `X-Request-Id`.
pub fn field_title(name: &str) -> String {
    python_title(name).replace('_', " ")
}

/// Cleans a doc comment the way Python's `inspect.cleandoc` cleans a docstring: leading
/// and trailing blank lines go, and the common indentation of the lines is removed, so
/// nested lists keep their relative indentation.
///
/// FastAPI also cuts a docstring at a form feed (`\f`), which hides the rest from the
/// document; the same happens here.
pub fn clean_doc(doc: &str) -> String {
    let doc = doc.split('\u{c}').next().unwrap_or_default();
    let lines: Vec<&str> = doc.lines().map(|l| l.trim_end()).collect();
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let dedented: Vec<&str> = lines
        .iter()
        .map(|l| if l.len() >= indent { &l[indent..] } else { "" })
        .collect();
    let start = dedented
        .iter()
        .position(|l| !l.is_empty())
        .unwrap_or(dedented.len());
    let end = dedented
        .iter()
        .rposition(|l| !l.is_empty())
        .map_or(start, |i| i + 1);
    dedented[start..end].join("\n")
}

/// The bare function name from a Rust type path such as
/// `my_app::handlers::create_invoice` or `my_app::list<T>`; `None` for closures.
pub fn function_name(type_name: &str) -> Option<&str> {
    let without_generics = match type_name.find('<') {
        Some(i) => &type_name[..i],
        None => type_name,
    };
    let name = without_generics.rsplit("::").next()?;
    let valid = !name.is_empty()
        && name.chars().all(is_word_char)
        && !name.starts_with(|c: char| c.is_ascii_digit());
    valid.then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_follow_fastapi() {
        assert_eq!(
            operation_id("read_item", "/items/{item_id}", "GET"),
            "read_item_items__item_id__get"
        );
        assert_eq!(
            operation_id("new_subscription", "new-subscription", "post"),
            "new_subscriptionnew_subscription_post"
        );
        assert_eq!(
            operation_id("read_users", "/users/", "get"),
            "read_users_users__get"
        );
    }

    #[test]
    fn titles_follow_python() {
        assert_eq!(summary_from_name("create_invoice"), "Create Invoice");
        assert_eq!(summary_from_name("secure_oauth"), "Secure Oauth");
        assert_eq!(field_title("callback_url"), "Callback Url");
        assert_eq!(field_title("x-request-id"), "X-Request-Id");
        assert_eq!(field_title("user-agent"), "User-Agent");
        assert_eq!(field_title("item_id"), "Item Id");
        assert_eq!(python_title("abc1def"), "Abc1Def");
        assert_eq!(python_title("hTML page"), "Html Page");
    }

    #[test]
    fn docs_are_cleaned_like_docstrings() {
        let doc = " Create an invoice.\n\n This will do:\n\n * one\n     * nested\n";
        assert_eq!(
            clean_doc(doc),
            "Create an invoice.\n\nThis will do:\n\n* one\n    * nested"
        );
        assert_eq!(clean_doc("\n\n  a\n\u{c}hidden"), "a");
        assert_eq!(clean_doc(""), "");
    }

    #[test]
    fn function_names_come_from_type_paths() {
        assert_eq!(
            function_name("app::handlers::create_invoice"),
            Some("create_invoice")
        );
        assert_eq!(
            function_name("app::list<alloc::string::String>"),
            Some("list")
        );
        assert_eq!(function_name("app::main::{{closure}}"), None);
    }
}
