//! docs/benchmarks.md: the table of rows, the machine they were measured on, and how.

use std::fmt::Write;
use std::process::Command;

/// One line of the table: a figure for bash and for hacmp, measured in the same run.
pub struct Row {
    pub what: String,
    pub bash: String,
    pub hacmp: String,
    pub comparison: String,
    pub command: String,
}

/// A group of rows with the text that says how they were measured.
pub struct Section {
    pub rows: Vec<Row>,
    pub method: String,
}

/// The machine, read from the commands an operator would run to describe it.
pub struct Machine {
    lines: Vec<(&'static str, String)>,
}

impl Machine {
    pub fn describe() -> Machine {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, model)| model.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".to_string());
        Machine {
            lines: vec![
                ("date (`date -u`)", first_line_of("date", &["-u"])),
                ("CPUs (`nproc`)", first_line_of("nproc", &[])),
                ("CPU model (/proc/cpuinfo)", cpu_model),
                ("kernel (`uname -sr`)", first_line_of("uname", &["-sr"])),
                ("memory (`free -h`)", memory_total()),
                ("bash", first_line_of("bash", &["--version"])),
                ("pgrep", first_line_of("pgrep", &["--version"])),
                ("perf", first_line_of("perf", &["version"])),
                ("load at the start (/proc/loadavg)", load_average()),
            ],
        }
    }

    /// The load at the end: the machine is shared, and the reader should see how busy it was.
    pub fn note_load_at_end(&mut self) {
        self.lines
            .push(("load at the end (/proc/loadavg)", load_average()));
    }
}

fn first_line_of(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| format!("{program}: not available"))
}

fn memory_total() -> String {
    let out = Command::new("free").arg("-h").output();
    out.ok()
        .and_then(|out| {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let total = text
                .lines()
                .find(|l| l.starts_with("Mem:"))?
                .split_whitespace()
                .nth(1)?
                .to_string();
            Some(format!("{total} in all"))
        })
        .unwrap_or_else(|| "unknown".to_string())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_string())
}

/// Rows 3 and 4 come from the parity simulator, which is not on this branch yet: their place
/// is kept so that the table keeps the numbering.
pub fn simulator_placeholders() -> Section {
    let placeholder = |what: &str| Row {
        what: what.to_string(),
        bash: "not measured yet".to_string(),
        hacmp: "not measured yet".to_string(),
        comparison: "must match in the compat profile".to_string(),
        command: "measured by `make bench-sim`, see below".to_string(),
    };
    Section {
        rows: vec![
            placeholder(
                "3. Failover latency (simulator): min, median, max time from the active host's \
                 crash to the application running elsewhere, default variables, many random \
                 crash instants",
            ),
            placeholder("4. Simulator speed: virtual hours per real second, two-node cluster"),
        ],
        method: "**Rows 3 and 4** are measured in virtual time by the parity simulator, which \
                 runs the same loop (and the unmodified bash original) against a simulated \
                 machine. They are placeholders until the simulator lands; its benchmark adds \
                 a section to `bench/` that returns these rows, and `make bench` then fills \
                 them in like the others."
            .to_string(),
    }
}

/// Row 5: the smoke run that keeps this benchmark from rotting.
pub fn smoke_section() -> Section {
    Section {
        rows: vec![Row {
            what: "5. CI smoke: every measured row above, in seconds, figures discarded"
                .to_string(),
            bash: "runs".to_string(),
            hacmp: "runs".to_string(),
            comparison: "no figures asserted; the scan's results are checked against pgrep"
                .to_string(),
            command: "`make bench-smoke` (and `make test`, through `cargo test --all-targets`)"
                .to_string(),
        }],
        method: "**Row 5**: `cargo test --all-targets` runs the benchmark binary without \
                 `--bench`, which makes it a smoke run: both daemons in both roles for a few \
                 seconds and the scan with a few dozen extra processes, all through the same \
                 code as the full run, the document written to a temporary directory and \
                 checked for every row. CI runs `make test`, so a change that breaks the \
                 benchmark fails CI."
            .to_string(),
    }
}

pub fn render(sections: &[Section], machine: &Machine, full_command: &str) -> String {
    let mut doc = String::new();
    let _ = writeln!(
        doc,
        "# Benchmarks: hacmp next to heartbeat.sh\n\n\
         Generated by `{full_command}` from one run on the machine below; no figure is typed \
         by hand. Each row compares the bash original and hacmp measured in the same run. \
         Rows 1 and 2 are issue 5's real-machine rows, 3 and 4 come from the simulator, 5 \
         is the CI smoke.\n"
    );
    let _ = writeln!(
        doc,
        "| what | bash (heartbeat.sh) | hacmp | comparison and target | reproduce |"
    );
    let _ = writeln!(doc, "| --- | --- | --- | --- | --- |");
    for row in sections.iter().flat_map(|s| &s.rows) {
        let _ = writeln!(
            doc,
            "| {} | {} | {} | {} | {} |",
            row.what, row.bash, row.hacmp, row.comparison, row.command
        );
    }
    let _ = writeln!(doc, "\n## The machine\n");
    for (name, value) in &machine.lines {
        let _ = writeln!(doc, "- {name}: {value}");
    }
    let _ = writeln!(doc, "\n## How each row is measured\n");
    for section in sections {
        let _ = writeln!(doc, "{}\n", section.method);
    }
    doc
}
