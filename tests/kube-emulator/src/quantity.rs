//! Kubernetes resource quantities (`500m`, `1`, `512Mi`, `1G`, `1e3`), kept
//! exact as a fraction so that `0.1` CPU is exactly 100 millicores.

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    num: i128,
    den: i128,
}

impl Quantity {
    /// In base units (bytes, cores), rounded up as the real `Value()` does.
    pub fn value(self) -> i64 {
        ceil_div(self.num, self.den)
    }

    /// In thousandths of a base unit (millicores), rounded up like `MilliValue()`.
    pub fn milli_value(self) -> i64 {
        ceil_div(self.num.saturating_mul(1000), self.den)
    }
}

fn ceil_div(num: i128, den: i128) -> i64 {
    let q = num.div_euclid(den) + i128::from(num.rem_euclid(den) != 0);
    q.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Parses the quantity syntax: a signed decimal number and an optional
/// binary (`Ki`…`Ei`), decimal (`n`, `u`, `m`, `k`, `M`…`E`) or exponent (`e3`) suffix.
pub fn parse(s: &str) -> Option<Quantity> {
    let s = s.trim();
    let split = s
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && (c == '+' || c == '-'))))
        .map_or(s.len(), |(i, _)| i);
    let (number, suffix) = s.split_at(split);
    let (sign, digits) = match number.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, number.strip_prefix('+').unwrap_or(number)),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && frac.is_empty() || frac.len() > 18 {
        return None;
    }
    let mut num: i128 = format!("{whole}{frac}").parse().ok()?;
    let mut den: i128 = 10i128.checked_pow(frac.len() as u32)?;
    let (base, exp): (i128, i32) = match suffix {
        "" => (10, 0),
        "n" => (10, -9),
        "u" => (10, -6),
        "m" => (10, -3),
        "k" => (10, 3),
        "M" => (10, 6),
        "G" => (10, 9),
        "T" => (10, 12),
        "P" => (10, 15),
        "E" => (10, 18),
        "Ki" => (2, 10),
        "Mi" => (2, 20),
        "Gi" => (2, 30),
        "Ti" => (2, 40),
        "Pi" => (2, 50),
        "Ei" => (2, 60),
        _ => {
            let e = suffix.strip_prefix(['e', 'E'])?;
            (10, e.parse().ok()?)
        }
    };
    let scale = base.checked_pow(exp.unsigned_abs())?;
    if exp >= 0 {
        num = num.checked_mul(scale)?;
    } else {
        den = den.checked_mul(scale)?;
    }
    Some(Quantity {
        num: sign * num,
        den,
    })
}

/// A quantity as it appears in JSON: usually a string, sometimes a bare number.
pub fn from_json(v: &Value) -> Option<Quantity> {
    match v {
        Value::String(s) => parse(s),
        Value::Number(n) => parse(&n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn milli(s: &str) -> i64 {
        parse(s).unwrap().milli_value()
    }

    fn bytes(s: &str) -> i64 {
        parse(s).unwrap().value()
    }

    #[test]
    fn cpu_in_millicores() {
        assert_eq!(milli("500m"), 500);
        assert_eq!(milli("1"), 1000);
        assert_eq!(milli("0.1"), 100);
        assert_eq!(milli("2.5"), 2500);
        assert_eq!(milli("1e3"), 1_000_000);
        assert_eq!(milli("100u"), 1);
    }

    #[test]
    fn memory_in_bytes() {
        assert_eq!(bytes("512Mi"), 512 * 1024 * 1024);
        assert_eq!(bytes("1Gi"), 1 << 30);
        assert_eq!(bytes("1G"), 1_000_000_000);
        assert_eq!(bytes("100k"), 100_000);
        assert_eq!(bytes("1.5Gi"), 3 << 29);
        assert_eq!(bytes("128974848"), 128_974_848);
        assert_eq!(bytes("129e6"), 129_000_000);
        assert_eq!(bytes("1E"), 1_000_000_000_000_000_000);
        assert_eq!(bytes("500m"), 1);
    }

    #[test]
    fn numbers_in_json_and_garbage() {
        assert_eq!(
            from_json(&serde_json::json!(2)).unwrap().milli_value(),
            2000
        );
        assert_eq!(parse("abc"), None);
        assert_eq!(parse("1Qi"), None);
        assert_eq!(parse(""), None);
    }
}
