//! bash reads the variable file: `bash --noprofile --norc` sources it, as heartbeat.sh's `. FILE`
//! or heartbeat.sh's own top level did, and reports what hacmp needs.
//!
//! A DEBUG trap (inherited by functions and sourced files through `set -T`) runs before every
//! command of bash's own process. It compares the watched variables with their values before the
//! previous command, so each change is charged to the file and line of the command that made it.
//! In script mode it also ends bash, with the report written, when the top level of the main file
//! reaches the boundary line (`boundary.rs`). The report is one file of NUL-terminated fields, so
//! that any value a bash variable can hold (every byte but NUL) comes through unchanged.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::Read;
#[cfg(test)]
use std::os::unix::ffi::OsStrExt;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::ConfigError;

/// How long bash may take to read the file: a `$(…)` that hangs must not keep the daemon from
/// ever starting or failing.
pub const TIME_LIMIT: Duration = Duration::from_secs(10);

/// The most of bash's output (the file's own and bash's messages) kept to explain a failure.
const OUTPUT_KEPT_BYTES: u64 = 64 * 1024;

/// What hacmp asks of bash.
pub struct Request<'a> {
    pub file: &'a Path,
    /// The environment bash starts in (and nothing else).
    pub environment: &'a [(OsString, OsString)],
    /// The variables whose value and origin are wanted; each a valid shell name.
    pub watched: &'a [String],
    /// Script mode: the line of the main file's top level where bash stops (`boundary.rs`).
    pub stop_line: Option<usize>,
}

/// One watched variable after bash has read the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    pub name: String,
    /// `None` when unset.
    pub value: Option<Vec<u8>>,
    pub exported: bool,
    /// The file and line of the command that last changed it; `None` when no command of the file
    /// changed it (it is the environment's, or unset).
    pub set_at: Option<(PathBuf, usize)>,
}

/// Everything bash reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// The watched variables, in the order asked.
    pub variables: Vec<Variable>,
    /// The exported environment after the file: what a command bash starts then receives.
    pub environment: Vec<(OsString, OsString)>,
    /// The names of variables that exist after the file and did not before.
    pub created: Vec<String>,
}

/// Runs bash over the file and returns its report, or the refusal: bash's own message with
/// file and line when the file makes bash fail.
pub fn evaluate(request: &Request) -> Result<Evaluation, ConfigError> {
    let scratch = Scratch::new().map_err(|e| {
        ConfigError(format!(
            "{}: cannot make a temporary directory to read it: {e}",
            request.file.display()
        ))
    })?;
    let report_path = scratch.0.join("report");
    let output_path = scratch.0.join("output");
    let output = File::create(&output_path).and_then(|file| Ok((file.try_clone()?, file)));
    let (stdout, stderr) = output.map_err(|e| {
        ConfigError(format!(
            "{}: cannot capture bash's output: {e}",
            request.file.display()
        ))
    })?;
    let stop_line = request.stop_line.unwrap_or(0).to_string();
    let mut command = Command::new("bash");
    command
        .args(["--noprofile", "--norc", "-c", &wrapper(request.watched)])
        .arg(request.file)
        .arg(&stop_line)
        .arg(&report_path)
        .env_clear()
        .envs(request.environment.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0);
    let child = command.spawn().map_err(|e| {
        ConfigError(format!(
            "{}: cannot run bash to read it: {e}",
            request.file.display()
        ))
    })?;
    let in_time = wait_then_end_group(child);
    let said = last_output(&output_path);
    if !in_time {
        return Err(ConfigError(format!(
            "{}: bash did not finish reading the file within {} s (a command in it hangs?); \
             it and everything it started were killed{}",
            request.file.display(),
            TIME_LIMIT.as_secs(),
            last_line_hint(&said)
        )));
    }
    let report = fs::read(&report_path).unwrap_or_default();
    parse(request, &report, &said)
}

/// A private directory for the report and the output, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> std::io::Result<Scratch> {
        let base = std::env::temp_dir();
        let mut attempt = 0u32;
        loop {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or_default();
            let path = base.join(format!("hacmp-read-{}-{nanos}", std::process::id()));
            match fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(Scratch(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Waits for bash within the time limit, then kills its process group, so that neither a hung
/// command nor anything the file left in the background outlives the read. Returns whether bash
/// ended in time. bash stays a zombie until its group is killed, so the group's id cannot have
/// been reused.
fn wait_then_end_group(mut child: std::process::Child) -> bool {
    let pid = child.id();
    let (ended, ended_in_time) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        // SAFETY: waitid only writes into the zeroed siginfo it is given.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        loop {
            let status =
                unsafe { libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT) };
            if status == 0
                || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
            {
                break;
            }
        }
        let _ = ended.send(());
    });
    let in_time = ended_in_time.recv_timeout(TIME_LIMIT).is_ok();
    let group = -(pid as libc::pid_t);
    // SAFETY: kill takes no pointers; the group is bash's own, made by process_group(0).
    unsafe { libc::kill(group, libc::SIGKILL) };
    waiter.join().expect("the waiting thread does not panic");
    let _ = child.wait();
    in_time
}

/// The end of what bash and the file printed, as text.
fn last_output(path: &Path) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut file) = File::open(path) {
        let length = file.metadata().map(|m| m.len()).unwrap_or(0);
        let skip = length.saturating_sub(OUTPUT_KEPT_BYTES);
        let _ = std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(skip));
        let _ = file.take(OUTPUT_KEPT_BYTES).read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The shell code around the file. `$0` is the file, as it is heartbeat.sh's own `$0` in script
/// mode; the file sees no positional parameters.
fn wrapper(watched: &[String]) -> String {
    let mut compare = String::from("  :\n");
    let mut initial = String::new();
    let mut values = String::new();
    for (index, name) in watched.iter().enumerate() {
        assert!(is_name(name), "{name:?} is not a shell variable name");
        let now = format!("${{{name}+s}}${{{name}-}}");
        initial.push_str(&format!(
            "_hacmp_seen[{index}]={now} _hacmp_file[{index}]= _hacmp_line[{index}]=0\n"
        ));
        compare.push_str(&format!(
            "  if [[ {now} != \"${{_hacmp_seen[{index}]}}\" ]]; then _hacmp_seen[{index}]={now} \
             _hacmp_file[{index}]=$_hacmp_at_file _hacmp_line[{index}]=$_hacmp_at_line; fi\n"
        ));
        values.push_str(&format!(
            "    printf '%s\\0' \"${{{name}+s}}\" \"${{{name}-}}\" \"${{{name}@a}}\" \
             \"${{_hacmp_file[{index}]}}\" \"${{_hacmp_line[{index}]}}\"\n"
        ));
    }
    let every_name: String = ('A'..='Z')
        .chain('a'..='z')
        .chain(['_'])
        .map(|letter| format!(" \"${{!{letter}@}}\""))
        .collect();
    format!(
        r#"_hacmp_main=$0 _hacmp_stop=$1 _hacmp_report=$2 _hacmp_pid=$BASHPID
_hacmp_at_file= _hacmp_at_line=0 _hacmp_done=
# Inside a function, as when the names after are listed, so that FUNCNAME and the like count.
_hacmp_list_before() {{
  declare -gA _hacmp_before
  for _hacmp_name in{every_name}; do _hacmp_before[$_hacmp_name]=1; done
}}
_hacmp_list_before
{initial}_hacmp_compare() {{
{compare}}}
_hacmp_step() {{
  # In the EXIT trap BASH_COMMAND still names the wrapper's `.`, wherever bash exited.
  [[ $BASHPID == "$_hacmp_pid" && $BASH_COMMAND != _hacmp* && $BASH_COMMAND != '. "$_hacmp_main"' &&
    ${{FUNCNAME[1]-}} != _hacmp* ]] &&
    (( ${{#FUNCNAME[@]}} > 1 )) || return 0
  _hacmp_compare
  _hacmp_at_file=$2 _hacmp_at_line=$1
  if (( _hacmp_stop > 0 && $1 >= _hacmp_stop && ${{#FUNCNAME[@]}} == 2 )) && [[ $2 == "$_hacmp_main" ]]; then
    _hacmp_write read 0
    exit 0
  fi
}}
_hacmp_write() {{
  _hacmp_trap=$(trap -p DEBUG)
  trap - DEBUG
  set +u
  _hacmp_done=1
  [[ $- == *T* && $_hacmp_trap == "trap -- '$_hacmp_debug' DEBUG" ]] && _hacmp_traced=1 || _hacmp_traced=
  _hacmp_env=() _hacmp_created=()
  for _hacmp_name in{every_name}; do
    [[ $_hacmp_name == _hacmp* ]] && continue
    [[ -n ${{_hacmp_before[$_hacmp_name]-}} ]] || _hacmp_created+=("$_hacmp_name")
    [[ $_hacmp_name != _ && -v $_hacmp_name && ${{!_hacmp_name@a}} == *x* && ${{!_hacmp_name@a}} != *[aA]* ]] &&
      _hacmp_env+=("$_hacmp_name=${{!_hacmp_name}}")
  done
  {{
    printf '%s\0' "$1" "$2" "$_hacmp_at_file" "$_hacmp_at_line" "$_hacmp_traced"
{values}    printf '%s\0' "${{#_hacmp_env[@]}}" "${{_hacmp_env[@]}}" "${{_hacmp_created[@]}}"
  }} >|"$_hacmp_report"
}}
_hacmp_exit() {{ [[ -n $_hacmp_done ]] || _hacmp_write exited "$1"; }}
trap '_hacmp_exit "$?"' EXIT
set --
set -T
_hacmp_debug='_hacmp_u=$_; _hacmp_step "$LINENO" "${{BASH_SOURCE[0]-}}"; : "$_hacmp_u"'
trap "$_hacmp_debug" DEBUG
# `$_` starts as the file, as bash starts a script with `$_` its path.
: "$_hacmp_main"
. "$_hacmp_main"
_hacmp_compare
_hacmp_write read 0
"#
    )
}

fn is_name(text: &str) -> bool {
    text.starts_with(|c: char| c == '_' || c.is_ascii_alphabetic())
        && text.chars().all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Reads the report; `said` is the end of bash's output, for bash's own error messages.
fn parse(request: &Request, report: &[u8], said: &str) -> Result<Evaluation, ConfigError> {
    let file = request.file.display();
    let mut fields = report.split(|&b| b == 0);
    let mut next = || fields.next().map(<[u8]>::to_vec);
    let header: Vec<Vec<u8>> = (0..5).map_while(|_| next()).collect();
    if header.len() < 5 {
        return Err(ConfigError(format!(
            "{file}: bash stopped before the file was read{}",
            last_line_hint(said)
        )));
    }
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    if header[0] == b"exited" {
        let at = format!("{}:{}", text(&header[2]), text(&header[3]));
        let here = format!("{at}: bash: ");
        let message = bash_messages(said, |_| true)
            .into_iter()
            .rfind(|message| message.starts_with(&here));
        return Err(ConfigError(match message {
            Some(message) => message,
            None => visible(&format!(
                "{at}: bash ended here with exit status {} (a top-level `exit`, or a failing \
                 command under `set -e`), so heartbeat.sh would never have reached its loop",
                text(&header[1])
            )),
        }));
    }
    if let Some(error) = bash_messages(said, |m| m.contains("syntax error")).first() {
        return Err(ConfigError(error.clone()));
    }
    if header[4].is_empty() {
        return Err(ConfigError(format!(
            "{file}: the file turns off `set -T` or replaces the DEBUG trap, through which hacmp \
             follows what it sets"
        )));
    }
    let mut variables = Vec::with_capacity(request.watched.len());
    for name in request.watched {
        let fields: Vec<Vec<u8>> = (0..5).map_while(|_| next()).collect();
        let [set, value, attributes, set_file, set_line] = <[Vec<u8>; 5]>::try_from(fields)
            .map_err(|_| ConfigError(format!("{file}: bash's report is cut short")))?;
        let line: usize = text(&set_line).parse().unwrap_or(0);
        variables.push(Variable {
            name: name.clone(),
            value: (set == b"s").then_some(value),
            exported: attributes.contains(&b'x'),
            set_at: (line > 0).then(|| (PathBuf::from(OsString::from_vec(set_file)), line)),
        });
    }
    let count: usize = next().map(|n| text(&n).parse().unwrap_or(0)).unwrap_or(0);
    let mut environment = Vec::with_capacity(count);
    for _ in 0..count {
        let entry = next().unwrap_or_default();
        let split = entry.iter().position(|&b| b == b'=').unwrap_or(entry.len());
        let (name, value) = entry.split_at(split);
        environment.push((
            OsString::from_vec(name.to_vec()),
            OsString::from_vec(value.get(1..).unwrap_or_default().to_vec()),
        ));
    }
    let created = std::iter::from_fn(next)
        .filter(|name| !name.is_empty())
        .map(|name| text(&name))
        .collect();
    Ok(Evaluation {
        variables,
        environment,
        created,
    })
}

/// bash's messages about the files it read that `wanted` picks, each as `FILE:LINE: bash:
/// message`. Only messages naming an existing file count: a `bash -c` run inside `$(…)` names
/// none, and its failure is the file's business.
fn bash_messages(said: &str, wanted: impl Fn(&str) -> bool) -> Vec<String> {
    let located = regex::Regex::new(r"^(.*): line ([0-9]+): (.*)$").expect("a valid pattern");
    let lines: Vec<(&str, &str, &str)> = said
        .lines()
        .filter_map(|line| {
            let found = located.captures(line)?;
            let (_, [file, number, message]) = found.extract();
            Path::new(file).is_file().then_some((file, number, message))
        })
        .collect();
    let mut messages = Vec::new();
    for (index, (file, line, message)) in lines.iter().enumerate() {
        if message.starts_with('`') || !wanted(message) {
            continue;
        }
        // A syntax error's second line repeats the offending text.
        let echoed = lines
            .get(index + 1)
            .filter(|next| next.0 == *file && next.1 == *line && next.2.starts_with('`'))
            .map(|next| format!(": {}", next.2))
            .unwrap_or_default();
        messages.push(visible(&format!("{file}:{line}: bash: {message}{echoed}")));
    }
    messages
}

/// The last line bash or the file printed, as a hint after a failure.
fn last_line_hint(said: &str) -> String {
    match said.lines().rev().find(|line| !line.trim().is_empty()) {
        Some(line) => format!(" (its last output: {})", visible(line.trim())),
        None => String::new(),
    }
}

/// A message with carriage returns and other control characters made visible, so that an error
/// line never moves the terminal's cursor.
pub fn visible(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\r' => "\\r".to_string(),
            c if c.is_control() => format!("\\x{:02x}", c as u32),
            c => c.to_string(),
        })
        .collect()
}

/// The process environment as bash should get it: every variable, whatever its bytes.
pub fn process_environment() -> Vec<(OsString, OsString)> {
    std::env::vars_os().collect()
}

/// An environment given as text.
pub fn environment_of(
    pairs: &std::collections::HashMap<String, String>,
) -> Vec<(OsString, OsString)> {
    pairs
        .iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Has bash read `text`, in which INCLUDED names a second file holding `included`.
    fn evaluate_text(text: &str, included: &[u8], watched: &[&str]) -> Evaluation {
        let directory = tempfile::tempdir().unwrap();
        let included_path = directory.path().join("included.sh");
        fs::write(&included_path, included).unwrap();
        let file = directory.path().join("vars.sh");
        fs::write(
            &file,
            text.replace("INCLUDED", &included_path.display().to_string()),
        )
        .unwrap();
        let watched: Vec<String> = watched.iter().map(|name| name.to_string()).collect();
        evaluate(&Request {
            file: &file,
            environment: &[(OsString::from("FROM_ENV"), OsString::from("e"))],
            watched: &watched,
            stop_line: None,
        })
        .unwrap()
    }

    #[test]
    fn each_change_is_charged_to_the_command_that_made_it() {
        let evaluation = evaluate_text(
            "a=1\nset_b() {\n  b=$1\n}\n. INCLUDED\nset_b 2\nFROM_ENV=e\n",
            b"\nc=3\n",
            &["a", "b", "c", "FROM_ENV", "unset_one"],
        );
        let origins: Vec<Option<usize>> = evaluation
            .variables
            .iter()
            .map(|v| v.set_at.as_ref().map(|(_, line)| *line))
            .collect();
        // `b` is set on line 3, in the function; `c` on line 2 of the sourced file; FROM_ENV is
        // assigned its own value, which changes nothing.
        assert_eq!(origins, [Some(1), Some(3), Some(2), None, None]);
        let c_file = &evaluation.variables[2].set_at.as_ref().unwrap().0;
        assert!(c_file.ends_with("included.sh"), "{c_file:?}");
        assert_eq!(evaluation.variables[4].value, None);
        assert!(evaluation.variables[3].exported);
        assert!(!evaluation.variables[0].exported);
        assert!(evaluation.created.iter().any(|name| name == "a"));
        assert!(!evaluation.created.iter().any(|name| name == "FROM_ENV"));
    }

    #[test]
    fn any_bytes_but_nul_come_through() {
        let evaluation = evaluate_text(
            "a=$'line\\none \\'quoted\\' \"twice\" \\xff\\t='\nexport b=$a\n",
            b"",
            &["a"],
        );
        let expected = b"line\none 'quoted' \"twice\" \xff\t=".to_vec();
        assert_eq!(evaluation.variables[0].value, Some(expected.clone()));
        let exported = evaluation
            .environment
            .iter()
            .find(|(name, _)| name == "b")
            .map(|(_, value)| value.as_bytes().to_vec());
        assert_eq!(exported, Some(expected));
    }
}
