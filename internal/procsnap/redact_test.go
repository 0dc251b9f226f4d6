// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package procsnap

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRedact: every rule, and what it leaves alone.
func TestRedact(t *testing.T) {
	tests := []struct {
		name string
		in   string // arguments separated by |
		want string
	}{
		{"flag=value", "app|--password=hunter2|--user=bob", "app|--password=***|--user=bob"},
		{"single dash flag=value", "app|-token=abc|-v", "app|-token=***|-v"},
		{"flag then value", "app|--token|abc123|--port|80", "app|--token|***|--port|80"},
		{"flag then flag: nothing to hide", "app|--api-key|--verbose", "app|--api-key|--verbose"},
		{"names by word", "app|--db-passwd=x|--client_secret=y|--apiKey=z|--auth-header=w|--session-id=v|--private-key-file=/k", "app|--db-passwd=***|--client_secret=***|--apiKey=***|--auth-header=***|--session-id=***|--private-key-file=/k"},
		{"mysql -p", "mysql|-uroot|-phunter2|db", "mysql|-uroot|-p***|db"},
		{"lone -p stays", "ssh|-p|22|host", "ssh|-p|22|host"},
		{"env style", "env|AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI|AWS_REGION=eu-west-1|app", "env|AWS_SECRET_ACCESS_KEY=***|AWS_REGION=eu-west-1|app"},
		{"key=value", "app|password=x|mode=fast", "app|password=***|mode=fast"},
		{"url userinfo", "psql|postgres://app:s3cr3t@db:5432/orders", "psql|postgres://app:***@db:5432/orders"},
		{"url userinfo inside a flag", "app|--dsn=mysql://root:pw@tcp(db)/x", "app|--dsn=mysql://root:***@tcp(db)/x"},
		{"url without password", "curl|https://user@example.com/x", "curl|https://user@example.com/x"},
		{"query parameters", "curl|https://api.example.com/v1?access_token=abc&page=2&sig=1", "curl|https://api.example.com/v1?access_token=***&page=2&sig=***"},
		{"authorization header", "curl|-H|Authorization: Bearer abcdef0123456789|https://x", "curl|-H|Authorization: Bearer ***|https://x"},
		{"lone bearer", "tool|Bearer|abcdef0123456789", "tool|Bearer|***"},
		{"basic", "curl|-H|Authorization: Basic dXNlcjpwYXNzd29yZA==", "curl|-H|Authorization: Basic ***"},
		{"jwt by shape", "app|eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "app|***"},
		{"github token by shape", "git|clone|ghp_abcdefghijklmnopqrstuvwxyz0123456789", "git|clone|***"},
		{"aws key id by shape", "aws|AKIAIOSFODNN7EXAMPLE", "aws|***"},
		{"ordinary arguments untouched", "gunicorn|--workers=4|--bind=0.0.0.0:8000|app:wsgi", "gunicorn|--workers=4|--bind=0.0.0.0:8000|app:wsgi"},
		{"python worker", "python|worker.py|--queue=reports|--job=nightly", "python|worker.py|--queue=reports|--job=nightly"},
		{"-p is not a password everywhere", "cp|-pr|a|b", "cp|-pr|a|b"},
		{"names by whole word", "vllm|--max-num-batched-tokens|8192|--keyspace=x|--authorization-mode=RBAC", "vllm|--max-num-batched-tokens|8192|--keyspace=x|--authorization-mode=RBAC"},
		{"a name about the credential", "app|--password-file=/run/s/db|--token-ttl=24h", "app|--password-file=/run/s/db|--token-ttl=24h"},
		{"key file kept, key hidden", "app|--ssl-key=/etc/k.pem|--api-key=abc", "app|--ssl-key=/etc/k.pem|--api-key=***"},
		{"program's own flag", "redis-cli|-h|r|-a|s3cret|ping", "redis-cli|-h|r|-a|***|ping"},
		{"subcommand's own flag", "docker|login|-u|me|-p|s3cret", "docker|login|-u|me|-p|***"},
		{"docker run -p is a port", "docker|run|-p|8080:80|nginx", "docker|run|-p|8080:80|nginx"},
		{"program after a wrapper", "kubectl|exec|r-0|--|redis-cli|-a|s3cret", "kubectl|exec|r-0|--|redis-cli|-a|***"},
		{"user:password without a URL", "curl|-u|me:s3cret|https://x", "curl|-u|me:***|https://x"},
		{"uid:gid is not a password", "docker|run|--user|1000:1000|img", "docker|run|--user|1000:1000|img"},
		{"secret inside a value", "psql|host=db password=s3cret dbname=x", "psql|host=db password=*** dbname=x"},
		{"helm --set list", "helm|install|x|--set|a=b,auth.password=s3cret,c=d", "helm|install|x|--set|a=b,auth.password=***,c=d"},
		{"header", "curl|-H|PRIVATE-TOKEN: s3cret", "curl|-H|PRIVATE-TOKEN: ***"},
		{"json body", "curl|-d|{\"password\":\"s3cret\"}", "curl|-d|{\"password\":\"***\"}"},
		{"bare credential name", "aws|configure|set|aws_secret_access_key|s3cret", "aws|configure|set|aws_secret_access_key|***"},
		{"positions of a subcommand", "mc|alias|set|m|https://x|ak|s3cret", "mc|alias|set|m|https://x|***|***"},
		{"shell -c", "sh|-c|mysql -uroot -ps3cret db", "sh|-c|mysql -uroot -p*** db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Redact(strings.Split(tt.in, "|"))
			assert.Equal(t, tt.want, strings.Join(got, "|"))
		})
	}
}

func TestRender(t *testing.T) {
	raw := []byte("python\x00worker.py\x00--password=hunter2\x00")
	assert.Equal(t, "python worker.py --password=***", Render(CaptureRedacted, "python", raw, false))
	assert.Equal(t, "python", Render(CaptureName, "python", raw, false))
	assert.Empty(t, Render(CaptureOff, "python", raw, false))
	assert.Equal(t, "[kthreadd]", Render(CaptureRedacted, "kthreadd", nil, false))

	long := []byte("app\x00" + strings.Repeat("é", 200) + "\x00")
	got := Render(CaptureRedacted, "app", long, false)
	assert.LessOrEqual(t, len(got), MaxCmdline)
	assert.GreaterOrEqual(t, len(got), MaxCmdline-1)
	assert.True(t, strings.HasPrefix(got, "app é"))
	assert.NotContains(t, got, "\uFFFD", "not cut inside a character")

	// A secret beyond the kept bytes but before the read's end is still
	// recognized whole (it never shows, being past the cut).
	pre := []byte("app\x00" + strings.Repeat("a", 240) + "\x00--token\x00abcdef\x00")
	assert.NotContains(t, Render(CaptureRedacted, "app", pre, false), "abc")
}

func TestParseCapture(t *testing.T) {
	for s, want := range map[string]Capture{"redacted": CaptureRedacted, "name": CaptureName, "off": CaptureOff} {
		c, err := ParseCapture(s)
		require.NoError(t, err)
		assert.Equal(t, want, c)
		assert.Equal(t, s, c.String())
	}
	_, err := ParseCapture("full")
	require.ErrorContains(t, err, `"full" is not one of redacted (default), name, off`)
}
