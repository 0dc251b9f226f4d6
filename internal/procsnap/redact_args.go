// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package procsnap // import "github.com/oomsight/oomsight/internal/procsnap"

import "strings"

// pending is what the previous argument says of the next one.
type pending uint8

const (
	none      pending = iota
	hideNext          // a secret (--password x, redis-cli -a x)
	nameNext          // after a bare credential name: a secret, unless another name
	keyNext           // a credential unless a path or boolean (--api-key x)
	userNext          // user<sep>password (curl -u user:pw)
	valueNext         // a flag's own value, not a positional (smbclient -m SMB3)
)

// redactor walks one command line. Its rules are the general ones (names,
// values, shapes) and the rules of the program being run, which switch
// when a positional argument names another program of the table
// (`sudo mysql -p…`, `docker exec db redis-cli -a …`, `kubectl exec … --
// mysql …`) or a subcommand with rules of its own (`docker login`).
type redactor struct {
	key     string // the table key in force ("" none)
	path    string // the program and subcommand words seen ("mc alias")
	rules   toolRules
	pos     int    // positional arguments since the key took force
	after   bool   // an `after` word was seen: positionals are secrets
	sep     string // userNext's separator
	bare    bool   // userNext: a value without sep is a secret too
	pending pending
}

// Redact returns args with credential-shaped values replaced by Redacted,
// one argument for one (an argument is never dropped or split). The rules,
// which err toward removing (see docs/redaction.md for what each catches,
// the corpus it is measured on and what it cannot see):
//
//   - a flag whose name holds a credential word (password, passwd, pwd,
//     passphrase, secret, token, apikey, psk, signature, cookie, …, also
//     inside a word: -storepass, --authtoken) keeps its name and loses its
//     value, attached (--password=x) or next (--password x); names with
//     key, auth, credential or session lose a value that is not a path or
//     a boolean; names that end in a word about the credential (--password-
//     file, --token-ttl, --auth-mode, --secret-name) keep theirs;
//   - NAME=VALUE with such a name (AWS_SECRET_ACCESS_KEY=…, -Dx.password=…,
//     --from-literal=password=…), also inside a longer value (libpq
//     "host=… password=…", mount -o user=u,password=…, helm --set a=b,
//     auth.password=…, JDBC ";password=…", Kafka JAAS password="…"), JSON
//     members ("password":"…"), HTTP headers (PRIVATE-TOKEN: …,
//     X-API-KEY: …, Authorization: Bearer …) and URL query parameters
//     (?access_token=…, Azure SAS sig=…);
//   - user:password before an @ (URLs, Go DSNs u:pw@tcp(…)), PEM private
//     keys, webhook URLs (Slack, Discord, Telegram) and tokens known by
//     shape (JWTs, ghp_…, glpat-…, xox?-…, sk_live_…, AKIA…, AIza…, …);
//   - a bare name of a credential followed by its value (aws configure set
//     aws_secret_access_key …, nmcli … password …);
//   - the table of programs' own flags and positions (tools).
func Redact(args []string) []string {
	out := make([]string, len(args))
	var r redactor
	for i, a := range args {
		if i == 0 {
			r.path = baseName(a)
			r.switchTo(r.path)
			out[i] = redactInside(a)
			continue
		}
		out[i] = r.arg(a, args[i-1])
	}
	r.hideLast(args, out)
	return out
}

// switchTo puts the rules of program name in force, if the table has any.
func (r *redactor) switchTo(name string) bool {
	rules, ok := tools[name]
	if !ok {
		return false
	}
	r.key, r.path, r.rules, r.pos, r.after = name, name, rules, 0, false
	return true
}

// arg redacts one argument after the first; prev is the one before.
func (r *redactor) arg(a, prev string) string {
	isFlag := len(a) > 1 && a[0] == '-' && a != "--"
	if p := r.pending; p != none {
		r.pending = none
		if !isFlag && a != "" {
			switch p {
			case hideNext:
				if settings(a) {
					return redactInside(a) // etcd --auth-token jwt,pub-key=…
				}
				return Redacted
			case nameNext:
				if !credentialWord(a) || !strings.ContainsAny(a, "._-") {
					return Redacted // a value, not a second name (wifi-sec.key-mgmt wpa-psk wifi-sec.psk …)
				}
			case keyNext:
				if !keepValue(keyish, a) {
					return Redacted
				}
			case valueNext:
				return redactInside(a)
			case userNext:
				if r.bare && !strings.Contains(a, r.sep) {
					return Redacted
				}
				return hideAfterSep(a, r.sep)
			}
		}
	}
	if strings.ContainsAny(a, " \t\n") && (prev == "-c" || hasRules(firstField(a))) {
		return redactLine(a) // sh -c "mysql -p…", a setproctitle'd line
	}
	if isFlag {
		r.after = false
		return r.flag(a)
	}
	return r.positional(a)
}

// hasRules tells whether the table has rules for program a.
func hasRules(a string) bool {
	_, ok := tools[baseName(a)]
	return ok
}

// firstField is the first whitespace-separated word of s.
func firstField(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

// redactLine redacts a command line passed as one argument (sh -c "…",
// a setproctitle'd process): its words are redacted as a command line of
// their own and joined again when any changed.
func redactLine(a string) string {
	f := strings.Fields(a)
	red := Redact(f)
	for i := range f {
		if f[i] != red[i] {
			return strings.Join(red, " ")
		}
	}
	return redactInside(a)
}

// flag redacts a flag argument.
func (r *redactor) flag(a string) string {
	rules := r.rules
	if v, attached, ok := flagValue(rules.next, a, rules.glued); ok {
		if !attached {
			r.pending = hideNext
			return a
		}
		return a[:len(a)-len(v)] + Redacted
	}
	if v, attached, ok := flagValue(rules.keyNext, a, true); ok {
		if !attached {
			r.pending = keyNext
			return a
		}
		if keepValue(keyish, v) {
			return a
		}
		return a[:len(a)-len(v)] + Redacted
	}
	if hasFlag(rules.valued, a) {
		r.pending = valueNext
		return a
	}
	if v, attached, ok := flagValue(rules.attached, a, true); ok {
		if attached && v != "" {
			return a[:len(a)-len(v)] + Redacted
		}
		return a
	}
	if v, attached, ok := flagValue(rules.userPass, a, true); ok {
		if !attached {
			r.pending, r.sep, r.bare = userNext, rules.sep, rules.bareSecret
			return a
		}
		if rules.bareSecret && !strings.Contains(v, rules.sep) {
			return a[:len(a)-len(v)] + Redacted
		}
		return a[:len(a)-len(v)] + hideAfterSep(v, rules.sep)
	}
	name, value, hasValue := strings.Cut(a, "=")
	if ordinaryFlags[strings.TrimLeft(name, "-")] {
		return a
	}
	if genericUserPass[strings.ToLower(name)] {
		if !hasValue {
			r.pending, r.sep, r.bare = userNext, ":", false
			return a
		}
		return name + "=" + hideAfterSep(value, ":")
	}
	if s := classify(name); s != plain {
		if !hasValue {
			if s == secret {
				r.pending = hideNext
			} else {
				r.pending = keyNext
			}
			return a
		}
		if keepValue(s, value) {
			return a
		}
		if settings(value) {
			// etcd --auth-token=jwt,pub-key=/…,sign-method=RS256 names a
			// mechanism and its settings: only credential settings go.
			return name + "=" + redactInside(value)
		}
		if n, v, ok := strings.Cut(value, "="); s == keyish && ok && identifier.MatchString(n) && v != "" && v[0] != '=' {
			// kubectl --auth-provider-arg=client-id=x: the inner name
			// decides (client-secret=*** goes, client-id=x stays).
			return name + "=" + redactValue(value)
		}
		return name + "=" + Redacted
	}
	if hasValue {
		return name + "=" + redactValue(value)
	}
	return redactInside(a)
}

// ordinaryFlags are flags whose names hold a credential word but whose
// values are not credentials (etcd's cluster token names the cluster).
var ordinaryFlags = map[string]bool{"initial-cluster-token": true}

// genericUserPass are long flags whose value is user:password in many
// programs (etcdctl --user, skopeo --creds, --basic-auth, --proxy-user).
// A uid:gid pair (docker run --user 1000:1000) has no password to hide.
var genericUserPass = map[string]bool{
	"--user": true, "--creds": true, "--src-creds": true, "--dest-creds": true,
	"--basic-auth": true, "--proxy-user": true, "--http-user": true, "--registry-creds": true,
}

// hideAfterSep hides what follows the first sep of a user<sep>password
// value; a value without sep, or with digits only after it (a uid:gid),
// is kept.
func hideAfterSep(v, sep string) string {
	i := strings.Index(v, sep)
	if i < 0 {
		return redactInside(v)
	}
	rest := v[i+len(sep):]
	if rest == "" || (sep == ":" && strings.Trim(rest, "0123456789") == "") {
		return redactInside(v) // user: or uid:gid (a token as the user: curl -u sk_test_…:)
	}
	return v[:i+len(sep)] + Redacted
}

// positional redacts a positional argument.
func (r *redactor) positional(a string) string {
	rules := r.rules
	// Programs and subcommands of the table.
	if r.path != "" {
		sub := r.path + " " + a
		if r.switchTo(sub) {
			return a
		}
		if toolPrefixes[sub] {
			r.path = sub
			return a
		}
	}
	if !strings.ContainsAny(a, "=/ ") || strings.HasPrefix(a, "/") {
		if r.switchTo(baseName(a)) {
			return a
		}
		if toolPrefixes[baseName(a)] {
			r.path = baseName(a)
			return a
		}
	}
	r.pos++
	if r.after {
		return Redacted
	}
	for _, w := range rules.after {
		if strings.EqualFold(a, w) {
			r.after = true
			return a
		}
	}
	for _, p := range rules.hidePos {
		if p == r.pos && (!rules.noKV || !strings.Contains(a, "=")) && !keepValue(secret, a) {
			return Redacted
		}
	}
	if rules.kvValues {
		if name, _, ok := strings.Cut(a, "="); ok && identifier.MatchString(name) {
			return name + "=" + Redacted
		}
	}
	if s, ok := windowsSecret(a); ok {
		return s
	}
	for _, pre := range rules.prefixes {
		if strings.HasPrefix(strings.ToLower(a), pre) && len(a) > len(pre) {
			return a[:len(pre)] + Redacted
		}
	}
	if rules.slash {
		if s, ok := hideSlashPassword(a); ok {
			return s
		}
	}
	if name, value, ok := strings.Cut(a, "="); ok && identifier.MatchString(name) {
		if s := classify(name); s != plain && !keepValue(s, value) {
			return name + "=" + Redacted
		}
		return redactInside(a) // user=u%pw,dom=x; a=b,auth.password=x
	}
	if credentialWord(a) {
		r.pending = nameNext
		return a
	}
	if strings.EqualFold(a, "bearer") || strings.EqualFold(a, "basic") || strings.EqualFold(a, "authorization:") {
		r.pending = hideNext
		return a
	}
	return redactInside(a)
}

// hideSlashPassword hides the password of an Oracle-style connect
// string: user/password[@db], also after userid=.
func hideSlashPassword(a string) (string, bool) {
	prefix := ""
	if name, v, ok := strings.Cut(a, "="); ok && strings.EqualFold(name, "userid") {
		prefix, a = name+"=", v
	}
	i := strings.IndexByte(a, '/')
	if i <= 0 || strings.HasPrefix(a, "/") {
		return "", false
	}
	end := len(a)
	if j := strings.LastIndexByte(a, '@'); j > i {
		end = j
	}
	if end == i+1 {
		return "", false
	}
	return prefix + a[:i+1] + Redacted + a[end:], true
}

// redactValue redacts a flag's or variable's value: NAME=VALUE inside it
// (--from-literal=password=x, --env=DB_PASSWORD=x) or the inside rules.
func redactValue(v string) string {
	if name, value, ok := strings.Cut(v, "="); ok && identifier.MatchString(name) {
		if s := classify(name); s != plain && !keepValue(s, value) {
			return name + "=" + Redacted
		}
	}
	return redactInside(v)
}

// windowsSecret hides the value of a Windows-style /name:value argument
// whose name holds a credential (/password:x, /SourcePassword:x).
func windowsSecret(a string) (string, bool) {
	if len(a) < 3 || a[0] != '/' {
		return "", false
	}
	name, v, ok := strings.Cut(a[1:], ":")
	if !ok || v == "" || !identifier.MatchString(name) || classify(name) != secret {
		return "", false
	}
	return "/" + name + ":" + Redacted, true
}

// hideLast applies a lastIfFlag rule (htpasswd -b file user password):
// when a short flag holding the letter is given, the last positional
// argument is hidden.
func (r *redactor) hideLast(args, out []string) {
	if r.rules.nextUnlessLast {
		hideAfterBareFlag(args, out, r.rules.attached)
	}
	c := r.rules.lastIfFlag
	if c == 0 && !r.rules.lastPos {
		return
	}
	given, last := r.rules.lastPos, -1
	for i, a := range args[1:] {
		switch {
		case len(a) > 1 && a[0] == '-' && a[1] != '-':
			given = given || (c != 0 && strings.IndexByte(a[1:], c) >= 0)
		case a != "" && a[0] != '-':
			last = i + 1
		}
	}
	if given && last > 0 {
		out[last] = Redacted
	}
}

// hideAfterBareFlag applies a nextUnlessLast rule (mysql -u u -p pw -h h
// db): mysql reads the argument after a bare -p as the database, but a
// command line that gives another positional argument after it meant it
// as the password. A positional argument is one that is not a flag and
// does not follow a flag without an attached value (-h host); so
// `mysql -u u -p mydb` keeps mydb, and `mysql -p pw db` hides pw.
func hideAfterBareFlag(args, out, flags []string) {
	isFlag := func(a string) bool { return len(a) > 1 && a[0] == '-' }
	for i := 1; i+1 < len(args); i++ {
		if !hasFlag(flags, args[i]) || isFlag(args[i+1]) || args[i+1] == "" {
			continue
		}
		for j := i + 2; j < len(args); j++ {
			prev := args[j-1]
			if !isFlag(args[j]) && (!isFlag(prev) || strings.Contains(prev, "=")) {
				out[i+1] = Redacted
				break
			}
		}
	}
}

// settings tells whether v is a comma-separated list of settings, most
// of them NAME=VALUE (jwt,pub-key=/etc/jwt.pub,sign-method=RS256): the
// value of a credential-named flag that selects a mechanism and
// configures it rather than holding the credential.
func settings(v string) bool {
	items := strings.Split(v, ",")
	if len(items) < 3 {
		return false
	}
	kv := 0
	for _, it := range items {
		if n, val, ok := strings.Cut(it, "="); ok && identifier.MatchString(n) && val != "" {
			kv++
		}
	}
	return 2*kv > len(items)
}
