//! Kubernetes resource quantities (`500m`, `1.5`, `512Mi`, `1e3`) as numbers,
//! and back as the short forms people write.

/// CPU in cores, memory in bytes; `None` when it does not parse.
pub fn parse(q: &str) -> Option<f64> {
    let q = q.trim();
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    for (suffix, factor) in SUFFIXES {
        if let Some(number) = q.strip_suffix(suffix) {
            return number.parse::<f64>().ok().map(|n| n * factor);
        }
    }
    q.parse().ok()
}

pub fn cpu(cores: f64) -> String {
    if cores.fract() == 0.0 {
        format!("{cores}")
    } else {
        format!("{}m", (cores * 1000.0).round())
    }
}

pub fn bytes(b: f64) -> String {
    const UNITS: &[(&str, f64)] = &[("Gi", 1073741824.0), ("Mi", 1048576.0), ("Ki", 1024.0)];
    for (unit, size) in UNITS {
        if b >= *size && (b / size).fract() == 0.0 {
            return format!("{}{unit}", b / size);
        }
    }
    match b {
        b if b >= 1073741824.0 => format!("{:.1}Gi", b / 1073741824.0),
        b if b >= 1048576.0 => format!("{:.0}Mi", b / 1048576.0),
        b => format!("{b}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_and_print() {
        assert_eq!(parse("500m"), Some(0.5));
        assert_eq!(parse("512Mi"), Some(536870912.0));
        assert_eq!(parse("1e3"), Some(1000.0));
        assert_eq!(parse("2"), Some(2.0));
        assert_eq!(cpu(0.75), "750m");
        assert_eq!(cpu(4.0), "4");
        assert_eq!(bytes(1536.0 * 1048576.0), "1536Mi");
        assert_eq!(bytes(8.0 * 1073741824.0), "8Gi");
    }
}
