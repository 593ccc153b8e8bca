//! `-o`: the one type of every command's output format. Each command prints
//! JSON for programs and one format for people, and offers just those two
//! through [`offer`], so `--help`, completions and the error for a format a
//! command does not print all list only what it can do.

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Lines for people (doctor, logs).
    Text,
    /// Aligned columns for people (status, history, secrets).
    Table,
    /// YAML documents (render).
    Yaml,
    /// JSON, for programs.
    Json,
}

impl Format {
    /// The word `-o` takes.
    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Table => "table",
            Format::Yaml => "yaml",
            Format::Json => "json",
        }
    }
}

/// One format a command offers, with the line `--help` shows for it, if any.
pub type Offered = (Format, Option<&'static str>);

/// The `-o` value parser of a command that prints `formats`, in the order
/// `--help` lists them.
pub const fn offer(formats: &'static [Offered]) -> Offer {
    Offer(formats)
}

#[derive(Debug, Clone, Copy)]
pub struct Offer(&'static [Offered]);

impl Offer {
    fn possible(&self) -> impl Iterator<Item = PossibleValue> + '_ {
        self.0.iter().map(|(format, help)| {
            let value = PossibleValue::new(format.name());
            match help {
                Some(help) => value.help(*help),
                None => value,
            }
        })
    }
}

impl TypedValueParser for Offer {
    type Value = Format;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Format, clap::Error> {
        // clap's own parser, so a format the command does not print gets
        // clap's usual error with the list of those it does.
        let name = PossibleValuesParser::new(self.possible()).parse_ref(cmd, arg, value)?;
        Ok(self
            .0
            .iter()
            .map(|(format, _)| *format)
            .find(|format| format.name() == name)
            .expect("the parser accepts only offered names"))
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(self.possible()))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[arg(short, long, value_parser = offer(&[(Format::Table, None), (Format::Json, None)]), default_value = "table")]
        output: Format,
    }

    #[test]
    fn a_command_takes_the_formats_it_offers_and_refuses_the_others() {
        let parsed = |args: &[&str]| Cli::try_parse_from(args).map(|c| c.output);
        assert_eq!(parsed(&["x"]).unwrap(), Format::Table);
        assert_eq!(parsed(&["x", "-o", "json"]).unwrap(), Format::Json);
        let refused = parsed(&["x", "-o", "yaml"]).unwrap_err().to_string();
        assert!(
            refused.contains("invalid value 'yaml'")
                && refused.contains("[possible values: table, json]"),
            "{refused}"
        );
    }
}
