package procsnap

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Capture is how much of a command line a snapshot keeps (the
// processes.command_line setting).
type Capture uint8

const (
	// CaptureRedacted keeps the first MaxCmdline bytes of the command line
	// with credential-shaped arguments replaced by Redacted (the default).
	CaptureRedacted Capture = iota
	// CaptureName keeps the process name (comm) only.
	CaptureName
	// CaptureOff keeps no name and no command line: pids and memory only.
	CaptureOff
)

// Setting values of Capture, as users write them.
const (
	SettingRedacted = "redacted"
	SettingName     = "name"
	SettingOff      = "off"
)

// ParseCapture reads a processes.command_line setting.
func ParseCapture(s string) (Capture, error) {
	switch s {
	case SettingRedacted:
		return CaptureRedacted, nil
	case SettingName:
		return CaptureName, nil
	case SettingOff:
		return CaptureOff, nil
	}
	return 0, fmt.Errorf("%q is not one of %s (default), %s, %s", s, SettingRedacted, SettingName, SettingOff)
}

func (c Capture) String() string {
	switch c {
	case CaptureName:
		return SettingName
	case CaptureOff:
		return SettingOff
	}
	return SettingRedacted
}

const (
	// MaxCmdline is how many bytes of a command line a snapshot keeps.
	MaxCmdline = 256
	// ReadCmdline is how many bytes of /proc/<pid>/cmdline are read: more
	// than kept, so that the redaction rules see an argument whole before
	// the result is cut to MaxCmdline.
	ReadCmdline = 4096
	// Redacted replaces a credential.
	Redacted = "***"
)

// Render returns what a snapshot keeps of a process's command line under
// c: "" (off), the name, or the redacted command line cut to MaxCmdline
// bytes. raw is the start of /proc/<pid>/cmdline, truncated when the file
// goes on. A process without a command line (a kernel thread, a zombie)
// is shown as [name], as ps does.
func Render(c Capture, name string, raw []byte, truncated bool) string {
	switch c {
	case CaptureOff:
		return ""
	case CaptureName:
		return name
	}
	args := SplitCmdline(raw, truncated)
	if len(args) == 0 {
		return "[" + name + "]"
	}
	return cut(strings.Join(Redact(args), " "), MaxCmdline)
}

// cut shortens s to at most n bytes without splitting a UTF-8 sequence.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// sensitiveWords make a flag, a variable or a query parameter
// credential-shaped when its name contains one of them (case-insensitive).
// The list errs on the side of redacting: --keyspace=x or --author=x lose
// their value too.
var sensitiveWords = []string{"pass", "pwd", "secret", "token", "key", "auth", "cred", "cookie", "session", "signature", "private"}

// sensitive tells whether a flag or variable name is credential-shaped.
func sensitive(name string) bool {
	name = strings.ToLower(strings.TrimLeft(name, "-"))
	for _, w := range sensitiveWords {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

var (
	// envName is a variable or key=value name: FOO_TOKEN=…, password=….
	envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)
	// userinfo is the password of a URL: scheme://user:password@host.
	userinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*):[^/\s@]*@`)
	// queryParam is a URL query parameter or a cookie-style pair.
	queryParam = regexp.MustCompile(`([?&;])([A-Za-z0-9_.-]+)=([^&;#\s]*)`)
	// scheme is an HTTP authorization value: Bearer <token>, Basic <base64>.
	scheme = regexp.MustCompile(`(?i)\b(bearer|basic|token)(\s+|:)([A-Za-z0-9._~+/=-]{8,})`)
	// tokenShape are tokens recognizable by shape alone: JWTs and the
	// prefixed keys of common services (GitHub, GitLab, Slack, Stripe,
	// OpenAI-style, AWS access key ids).
	tokenShape = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*|\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}|\bgithub_pat_[A-Za-z0-9_]{20,}|\bglpat-[A-Za-z0-9_-]{20,}|\bxox[abposr]-[A-Za-z0-9-]{10,}|\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}|\bsk-[A-Za-z0-9_-]{20,}|\bAKIA[0-9A-Z]{16}\b`)
)

// Redact returns args with credential-shaped values replaced by Redacted.
// The rules, applied to each argument:
//
//   - a flag whose name is credential-shaped (see sensitive) keeps its name
//     and loses its value: --password=x, -token=x; written apart
//     (--password x, --api-key x) the next argument is the value;
//   - -pVALUE (mysql's password form; a port written -p8080 loses its
//     value too);
//   - NAME=VALUE with a credential-shaped NAME (AWS_SECRET_ACCESS_KEY=…,
//     password=…, as env(1) or a config override passes them);
//   - inside any argument: the password of a URL (scheme://user:pw@host),
//     credential-shaped query parameters (?token=…, &password=…), an
//     authorization value (Bearer …, Basic …, token …) and tokens known by
//     shape (JWTs, ghp_…, glpat-…, xoxb-…, sk_live_…, sk-…, AKIA…);
//   - the argument after a lone Bearer, Basic or Authorization:.
func Redact(args []string) []string {
	out := make([]string, len(args))
	next := false // the previous argument asks for this one to be hidden
	for i, a := range args {
		if next && a != "" && (a[0] != '-' || a == "-") {
			out[i], next = Redacted, false
			continue
		}
		next = false
		out[i] = redactOne(a, &next)
	}
	return out
}

// redactOne applies the rules to one argument; it sets *next when the
// argument is a flag whose value follows.
func redactOne(a string, next *bool) string {
	switch {
	case strings.HasPrefix(a, "-") && len(a) > 1:
		name, _, hasValue := strings.Cut(a, "=")
		if sensitive(name) {
			if hasValue {
				return name + "=" + Redacted
			}
			*next = true
			return a
		}
		if len(a) > 2 && a[1] == 'p' && !hasValue {
			return "-p" + Redacted
		}
	case strings.EqualFold(a, "bearer") || strings.EqualFold(a, "basic") || strings.EqualFold(a, "authorization:"):
		*next = true
		return a
	default:
		if name, _, ok := strings.Cut(a, "="); ok && envName.MatchString(name) && sensitive(name) {
			return name + "=" + Redacted
		}
	}
	return redactInside(a)
}

// redactInside applies the rules that find credentials inside an
// argument (URLs, authorization values, token shapes).
func redactInside(a string) string {
	a = userinfo.ReplaceAllString(a, "${1}:"+Redacted+"@")
	a = queryParam.ReplaceAllStringFunc(a, func(m string) string {
		sub := queryParam.FindStringSubmatch(m)
		if !sensitive(sub[2]) {
			return m
		}
		return sub[1] + sub[2] + "=" + Redacted
	})
	a = scheme.ReplaceAllString(a, "${1}${2}"+Redacted)
	return tokenShape.ReplaceAllString(a, Redacted)
}
