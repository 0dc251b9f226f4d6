// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package procsnap

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestRedactRedTeamForms: the forms an independent red-team set found
// (docs/redaction.md), with other values, and the look-alikes each rule
// must leave alone.
func TestRedactRedTeamForms(t *testing.T) {
	tests := []struct {
		name string
		in   string // arguments separated by |
		want string
	}{
		{"mysql -p PW then a database", "mysql|-u|app|-p|Xy7pw|-h|db|orders", "mysql|-u|app|-p|***|-h|db|orders"},
		{"mysql -p DB last stays", "mysql|-u|app|-p|orders", "mysql|-u|app|-p|orders"},
		{"mysql -p then a flag's value", "mysql|-p|orders|-e|select 1", "mysql|-p|orders|-e|select 1"},
		{"IBM ldapsearch -P key file password", "ldapsearch|-h|l|-P|Kdb9pw|-K|/k.kdb", "ldapsearch|-h|l|-P|***|-K|/k.kdb"},
		{"OpenLDAP -P version", "ldapsearch|-P|3|-x|-b|dc=x", "ldapsearch|-P|3|-x|-b|dc=x"},
		{"redis URI password only", "redis-cli|-u|rediss://Pw0nly@r:6380/0", "redis-cli|-u|rediss://***@r:6380/0"},
		{"http URI user only stays", "curl|https://bob@example.com/", "curl|https://bob@example.com/"},
		{"influx -t", "influx|query|-t|T0k3n==|q", "influx|query|-t|***|q"},
		{"SonarQube token by shape", "java|-Dsonar.login=sqp_0123456789abcdef0123456789abcdef01234567", "java|-Dsonar.login=***"},
		{"sonar project key stays", "sonar-scanner|-Dsonar.projectKey=shop", "sonar-scanner|-Dsonar.projectKey=shop"},
		{"npm per-registry token", "npm|config|set|//r.example.com/:_authToken|abc-123", "npm|config|set|//r.example.com/:_authToken|***"},
		{"npm token by shape", "app|npm_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ", "app|***"},
		{"Stripe key as curl's user", "curl|-u|sk_live_51HabcdefGHIJKLmnop:|https://api.stripe.com", "curl|-u|***:|https://api.stripe.com"},
		{"OpenAI key by shape", "app|--model|x|sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t", "app|--model|x|***"},
		{"sk- words stay", "helm|install|sk-learn-model-serving-release|chart", "helm|install|sk-learn-model-serving-release|chart"},
		{"legacy Vault token", "vault|token|lookup|s.Ab3De6Gh9Jk2Mn5Pq8St1Vw4", "vault|token|lookup|***"},
		{"dotted name stays", "java|-cp|s.abcdefghijklmnopqrstuvwx|Main", "java|-cp|s.abcdefghijklmnopqrstuvwx|Main"},
		{"Twilio key SID", "app|SK0123456789abcdef0123456789abcdef", "app|***"},
		{"etcd auth-token settings", "etcd|--auth-token=jwt,pub-key=/k.pub,priv-key=/k,sign-method=RS256", "etcd|--auth-token=jwt,pub-key=/k.pub,priv-key=/k,sign-method=RS256"},
		{"etcd auth-token settings, value next", "etcd|--auth-token|jwt,pub-key=a.rsa.pub,priv-key=a.rsa,ttl=10m", "etcd|--auth-token|jwt,pub-key=a.rsa.pub,priv-key=a.rsa,ttl=10m"},
		{"settings with a secret", "app|--token=x,y=1,password=pw", "app|--token=x,y=1,password=***"},
		{"scp-style remote", "restic|-r|sftp:backup@nas:/srv/repo|init", "restic|-r|sftp:backup@nas:/srv/repo|init"},
		{"Go DSN still hidden", "app|--dsn=root:pw@tcp(db)/x", "app|--dsn=root:***@tcp(db)/x"},
		{"smbclient valued flags", "smbclient|-L|//fs|-N|-m|SMB3", "smbclient|-L|//fs|-N|-m|SMB3"},
		{"smbclient -c command", "smbclient|//fs/share|-U|a%pw|-c|ls", "smbclient|//fs/share|-U|a%***|-c|ls"},
		{"smbclient positional password", "smbclient|//fs/printer|Pr1ntPw|-U|guest", "smbclient|//fs/printer|***|-U|guest"},
		{"vault write keeps policies", "vault|write|auth/userpass/users/u|password=pw|policies=admins", "vault|write|auth/userpass/users/u|password=***|policies=admins"},
		{"vault kv put hides all", "vault|kv|put|secret/app|user=u|api=x", "vault|kv|put|secret/app|user=***|api=***"},
		{"auth-provider-arg inner name", "kubectl|--auth-provider-arg=client-id=app|--auth-provider-arg=client-secret=s3c", "kubectl|--auth-provider-arg=client-id=app|--auth-provider-arg=client-secret=***"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Redact(strings.Split(tt.in, "|"))
			assert.Equal(t, tt.want, strings.Join(got, "|"))
		})
	}
}
