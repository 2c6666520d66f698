//! Class labels → class indices, the one encoding every loader shares.
//!
//! Labels are compared as canonical strings: a numeric label that is a whole number is written
//! without a fractional part (`"1.0"`, `"1"` and `" 1 "` are the same class `1`), any other label
//! is its trimmed text. Without a given order: non-negative integer labels are their own class
//! indices (PyTorch's convention; classes `0..=max`, so a label keeps its value even when some
//! class is absent from this file); other labels are sorted — numerically when every label is a
//! whole number, else as text — so the encoding never depends on row order.

/// Why one label could not be encoded: the label's index in the input and the message.
pub(crate) type LabelError = (usize, String);

/// A label's canonical class name.
fn canonical(label: &str) -> String {
    let t = label.trim();
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() && v.fract() == 0.0 && v.abs() < 2f64.powi(53) => format!("{}", v as i64),
        _ => t.to_string(),
    }
}

/// Parses a numeric target value; `Err` says why it is not one.
pub(crate) fn parse_number(field: &str) -> Result<f64, String> {
    let t = field.trim();
    if t.is_empty() {
        return Err("missing value (empty field)".into());
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(v) => Err(format!("`{t}` is {v}; only finite numbers are allowed")),
        Err(_) => Err(format!("`{t}` is not a number")),
    }
}

/// Encodes `labels` as class indices; returns the indices and the class names in index order.
///
/// With `order`, classes are exactly those listed (a label not in it is an error). Without,
/// non-negative integers are their own indices, other labels are the distinct labels, sorted.
/// A numeric label that is not a whole number is an error
/// (it is almost surely a regression target read as classes by mistake).
pub(crate) fn encode_classes(
    labels: &[&str],
    order: Option<&[String]>,
) -> Result<(Vec<f64>, Vec<String>), LabelError> {
    let canon: Vec<String> = labels.iter().map(|l| canonical(l)).collect();
    for (i, (raw, c)) in labels.iter().zip(&canon).enumerate() {
        let t = raw.trim();
        if t.is_empty() {
            return Err((i, "missing class label (empty field)".into()));
        }
        if let Ok(v) = t.parse::<f64>()
            && c == t
            && (!v.is_finite() || v.fract() != 0.0)
        {
            return Err((i, format!("`{t}` is not a whole number, so it cannot be a class label")));
        }
    }
    let classes: Vec<String> = match order {
        Some(order) => order.iter().map(|c| canonical(c)).collect(),
        None => {
            let mut distinct: Vec<String> = canon.clone();
            distinct.sort();
            distinct.dedup();
            let ints: Option<Vec<i64>> = distinct.iter().map(|c| c.parse::<i64>().ok()).collect();
            match ints {
                // Non-negative integer labels are class indices already (PyTorch's convention):
                // classes 0..=max, so a label keeps its value even when some class is absent
                // from this file.
                Some(ints) if ints.iter().all(|&v| v >= 0) => {
                    let max = ints.iter().copied().max().unwrap_or(0);
                    (0..=max).map(|v| v.to_string()).collect()
                }
                Some(mut ints) => {
                    ints.sort_unstable();
                    ints.iter().map(i64::to_string).collect()
                }
                None => distinct,
            }
        }
    };
    let mut indices = Vec::with_capacity(canon.len());
    for (i, c) in canon.iter().enumerate() {
        match classes.iter().position(|k| k == c) {
            Some(k) => indices.push(k as f64),
            None => {
                return Err((
                    i,
                    format!("class `{c}` is not one of the model's classes: {}", classes.join(", ")),
                ));
            }
        }
    }
    Ok((indices, classes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_negative_integer_labels_are_their_own_indices() {
        let (idx, classes) = encode_classes(&["0", "2", "2"], None).unwrap();
        assert_eq!(idx, [0.0, 2.0, 2.0]);
        assert_eq!(classes, ["0", "1", "2"]);
    }

    #[test]
    fn string_labels_sort_as_text_and_integers_numerically() {
        let (idx, cls) = encode_classes(&["b", "a", "c", "a"], None).unwrap();
        assert_eq!((idx, cls), (vec![1., 0., 2., 0.], vec!["a".into(), "b".into(), "c".into()]));
        let (idx, cls) = encode_classes(&["10", "-2", "-2.0", " 1 "], None).unwrap();
        assert_eq!((idx, cls), (vec![2., 0., 0., 1.], vec!["-2".into(), "1".into(), "10".into()]));
    }

    #[test]
    fn a_given_order_is_kept_and_unknown_labels_are_errors() {
        let order = vec!["virginica".to_string(), "setosa".to_string()];
        let (idx, _) = encode_classes(&["setosa", "virginica"], Some(&order)).unwrap();
        assert_eq!(idx, [1., 0.]);
        let (i, msg) = encode_classes(&["setosa", "versicolor"], Some(&order)).unwrap_err();
        assert_eq!(i, 1);
        assert!(msg.contains("versicolor") && msg.contains("virginica, setosa"), "{msg}");
    }

    #[test]
    fn fractional_and_empty_labels_are_errors() {
        assert_eq!(encode_classes(&["1", "1.5"], None).unwrap_err().0, 1);
        assert_eq!(encode_classes(&["a", " "], None).unwrap_err().0, 1);
        assert!(encode_classes(&["nan"], None).is_err());
    }

    #[test]
    fn numbers_must_be_finite() {
        assert_eq!(parse_number(" 2.5 "), Ok(2.5));
        assert!(parse_number("").unwrap_err().contains("missing"));
        assert!(parse_number("inf").unwrap_err().contains("finite"));
        assert!(parse_number("NaN").unwrap_err().contains("finite"));
        assert!(parse_number("abc").unwrap_err().contains("not a number"));
    }
}
