// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package procsnap // import "github.com/oomsight/oomsight/internal/procsnap"

import (
	"strings"
	"unicode"
)

// sensitivity is what a flag, variable or key name says about its value.
type sensitivity uint8

const (
	// plain: an ordinary name (--workers, --keyspace, --max-tokens).
	plain sensitivity = iota
	// keyish: a name that holds a credential unless its value is a path
	// or a boolean (--ssl-key=/etc/…/key.pem is a file, --api-key=abc a
	// key; --auth user:pw, --session-id …).
	keyish
	// secret: the value is a credential whatever it looks like
	// (--password, --token, --client-secret, -storepass, sig=).
	secret
)

// nameWords splits a flag, variable, key or header name into lower-case
// words at punctuation and camelCase boundaries: "-Djavax.net.ssl.
// keyStorePassword" → djavax net ssl key store password, "X-API-KEY" → x
// api key, "_authToken" → auth token.
func nameWords(name string) []string {
	var words []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			words = append(words, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	rs := []rune(name)
	for i, r := range rs {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			// A lower-to-upper step starts a word (keyStore); so does the
			// last capital of a run followed by a lower-case letter
			// (APIKey → API Key).
			if unicode.IsUpper(r) && len(cur) > 0 {
				prev := rs[i-1]
				if unicode.IsLower(prev) || unicode.IsDigit(prev) ||
					(unicode.IsUpper(prev) && i+1 < len(rs) && unicode.IsLower(rs[i+1])) {
					flush()
				}
			}
			cur = append(cur, r)
		default:
			flush()
		}
	}
	flush()
	return words
}

// secretWords are words that make a name hold a credential.
var secretWords = map[string]bool{
	"password": true, "passwd": true, "pass": true, "pwd": true, "pw": true,
	"passphrase": true, "passcode": true, "secret": true, "token": true,
	"apikey": true, "psk": true, "sas": true, "signature": true, "sig": true,
	"bearer": true, "cookie": true, "passin": true, "passout": true,
	"secretkey": true, "authkey": true, "accesskey": true, "masterauth": true,
	"encrypt": true, "otp": true, "totp": true, "pin": true,
}

// keyishWords make a name hold a credential unless its value is a path.
var keyishWords = map[string]bool{
	"key": true, "auth": true, "authorization": true, "cred": true,
	"creds": true, "credential": true, "credentials": true, "session": true,
	"privatekey": true, "sid": true,
}

// notPass are words that end in "pass" without being one.
var notPass = map[string]bool{"bypass": true, "compass": true, "surpass": true, "overpass": true, "underpass": true, "multipass": true}

// neutralLast are last words that make a name about a credential rather
// than the credential itself: --password-file=/run/secrets/db,
// --token-ttl=24h, --authorization-mode=Node,RBAC, --auth-type=basic,
// --secret-name=db, --key-size=4096.
var neutralLast = map[string]bool{
	"file": true, "files": true, "path": true, "dir": true, "directory": true,
	"mode": true, "type": true, "method": true, "methods": true, "name": true,
	"names": true, "id": true, "ids": true, "url": true, "uri": true,
	"endpoint": true, "host": true, "port": true, "user": true,
	"username": true, "timeout": true, "ttl": true, "length": true,
	"len": true, "size": true, "bits": true, "count": true, "enabled": true,
	"enable": true, "disabled": true, "required": true, "backend": true,
	"provider": true, "source": true, "format": true, "algorithm": true,
	"alg": true, "cache": true, "env": true, "policy": true, "plugin": true,
	"plugins": true, "scope": true, "scopes": true, "version": true,
	"prefix": true, "level": true, "server": true, "location": true,
	"fd": true, "stdin": true, "prompt": true, "command": true, "cmd": true,
	"helper": true, "webhook": true, "interval": true, "period": true,
	"expiry": true, "expiration": true, "lifetime": true, "duration": true,
	"age": true, "limit": true, "arn": true, "hash": true, "audience": true,
	"ref": true, "store": true, "strategy": true,
	"rotation": true, "retries": true, "delay": true, "keyring": true,
	"config": true, "kubeconfig": true, "issuer": true, "scheme": true,
	"encryption": true, "hashing": true, "complexity": true, "min": true,
	"max": true, "mechanism": true, "mechanisms": true, "database": true,
	"db": true, "realm": true, "protocol": true, "protocols": true,
}

// dataKeyWords are words before "key" that make a key a name or an
// ordering of data rather than a credential.
var dataKeyWords = map[string]bool{
	"project": true, "partition": true, "routing": true, "sort": true,
	"primary": true, "foreign": true, "shard": true, "sharding": true,
	"cache": true, "object": true, "row": true, "group": true,
	"dedup": true, "deduplication": true, "idempotency": true,
	"lookup": true, "index": true, "distribution": true, "message": true,
}

// classify tells what a name says about its value.
func classify(name string) sensitivity {
	ws := nameWords(name)
	for len(ws) > 1 && strings.Trim(ws[len(ws)-1], "0123456789") == "" {
		ws = ws[:len(ws)-1] // zookeeper.authProvider.1
	}
	if len(ws) == 0 {
		return plain
	}
	if last := ws[len(ws)-1]; len(ws) > 1 && neutralLast[last] {
		// --password-file, --token-ttl; but a session id is the session,
		// a token id (vault -dev-root-token-id) the token
		prev := ws[len(ws)-2]
		if last != "id" || (prev != "session" && wordSensitivity(prev) != secret) {
			return plain
		}
	}
	if last := ws[len(ws)-1]; len(ws) > 1 && last == "key" && dataKeyWords[ws[len(ws)-2]] {
		// sonar.projectKey, --partition-key, --routing-key: a key that
		// names or orders data, not a credential
		return plain
	}
	s := plain
	for _, w := range ws {
		if c := wordSensitivity(w); c > s {
			s = c
		}
	}
	return s
}

// wordSensitivity classifies one word of a name.
func wordSensitivity(w string) sensitivity {
	switch {
	case secretWords[w]:
		return secret
	case keyishWords[w]:
		return keyish
	case strings.Contains(w, "password") || strings.Contains(w, "passwd") ||
		strings.Contains(w, "passphrase") || strings.Contains(w, "secret"):
		// dbpassword, clientsecret, storepassword
		return secret
	case strings.HasSuffix(w, "pass") && !notPass[w]:
		// storepass, keypass, requirepass (keytool, redis)
		return secret
	case len(w) > len("token") && strings.HasSuffix(w, "token"):
		// accesstoken, authtoken (tokens, tokenizer stay plain)
		return secret
	case len(w) > len("pwd") && strings.HasSuffix(w, "pwd") && w != "cwd":
		return secret
	case strings.HasSuffix(w, "apikey") || strings.HasSuffix(w, "secretkey") || strings.HasSuffix(w, "authkey"):
		return secret
	}
	return plain
}

// keepValue tells whether the value of a name of sensitivity s is left
// alone: an empty value, a boolean, and for keyish names a path (a key
// file is not a key) or a reference to one.
func keepValue(s sensitivity, v string) bool {
	if v == "" {
		return true
	}
	switch strings.ToLower(v) {
	case "true", "false", "yes", "no", "on", "off": // -o PasswordAuthentication=no
		return true
	}
	if s != keyish {
		return false
	}
	return pathLike(v) || strings.Trim(v, "0123456789") == ""
}

// keyFileExts are extensions of files that hold keys and certificates.
var keyFileExts = []string{".pem", ".key", ".crt", ".cer", ".der", ".p12", ".pfx", ".jks", ".json", ".asc", ".gpg", ".pub", ".rsa", ".txt", ".conf", ".kubeconfig", ".yaml", ".yml"}

// pathLike tells whether v names a file rather than holding a credential.
func pathLike(v string) bool {
	if strings.HasPrefix(v, "/") || strings.HasPrefix(v, "./") || strings.HasPrefix(v, "../") ||
		strings.HasPrefix(v, "~/") || strings.HasPrefix(v, "file:") || strings.HasPrefix(v, "@") {
		return true
	}
	lv := strings.ToLower(v)
	for _, e := range keyFileExts {
		if strings.HasSuffix(lv, e) {
			return true
		}
	}
	return false
}

// credentialWord tells whether a bare positional argument names a
// credential whose value follows as the next argument: `aws configure
// set aws_secret_access_key …`, `nmcli … password …`, `redis-cli CONFIG
// SET requirepass …`, `mysqladmin password …`. A single plain word must be
// one of a few (secret and token alone are too often verbs' objects:
// `kubectl create secret`, `kubeadm token create`); a compound name
// must end in a credential word.
func credentialWord(a string) bool {
	if i := strings.LastIndex(a, ":"); strings.HasPrefix(a, "//") && i > 0 {
		// npm's per-registry keys: npm config set
		// //registry.npmjs.org/:_authToken … (npmrc(5): _auth, _authToken,
		// _password are credentials, scoped by the registry's URL).
		return identifier.MatchString(a[i+1:]) && classify(a[i+1:]) != plain
	}
	if !credentialName.MatchString(a) {
		return false
	}
	ws := nameWords(a)
	if len(ws) == 0 {
		return false
	}
	last := ws[len(ws)-1]
	if len(ws) == 1 && !strings.ContainsAny(a, "_.-") {
		switch last {
		case "password", "passwd", "passphrase", "psk", "requirepass", "masterauth":
			return true
		}
		for _, suf := range []string{"token", "password", "secret"} { // authtoken, dbpassword
			if len(last) > len(suf) && strings.HasSuffix(last, suf) {
				return true
			}
		}
		return false
	}
	if wordSensitivity(last) == secret {
		return true
	}
	if last != "key" {
		return false
	}
	for _, w := range ws[:len(ws)-1] { // aws_secret_access_key
		if wordSensitivity(w) == secret {
			return true
		}
	}
	return false
}
