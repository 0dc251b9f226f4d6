// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package procsnap // import "github.com/oomsight/oomsight/internal/procsnap"

import (
	"slices"
	"strings"
)

// toolRules are the secret-bearing arguments of one program that no
// general rule can find: a short flag's meaning is the program's own
// (-p is mysql's password and ssh's port, -a redis-cli's password), and
// some programs take a secret as a plain positional argument after a
// known word. Keyed by the executable's base name, or by "name sub" for
// rules that hold only after a subcommand (`docker login -p`).
type toolRules struct {
	// next are flags whose value (the next argument, or attached: -aVALUE
	// for a one-letter flag, --flag=VALUE) is a secret.
	next []string
	// attached are one-letter flags whose value is a secret only when
	// attached (mysql's -pVALUE; a lone -p asks for the password).
	attached []string
	// userPass are flags whose value is user<sep>password: the part after
	// the first sep is a secret (curl -u user:pw, smbclient -U dom/u%pw).
	userPass []string
	sep      string
	// hidePos are the positions (1-based, counted among the positional
	// arguments after the program or subcommand) that are secrets:
	// `mc alias set NAME URL ACCESS SECRET` hides 3 and 4.
	hidePos []int
	// after are words after which the following positional arguments are
	// secrets, up to the next flag (redis-cli AUTH pw, db2 … using pw).
	after []string
	// lastIfFlag: when a flag containing this letter is given, the last
	// positional argument is a secret (htpasswd -b file user pw).
	lastIfFlag byte
	// slash: user/password[@db] arguments (sqlplus scott/tiger@orcl).
	slash bool
	// prefixes are prefixes of positional arguments whose rest is a
	// secret (xfreerdp /p:pw, redis ACL SETUSER … >pw).
	prefixes []string
	// noKV: hidePos positions holding NAME=VALUE are left to the general
	// rules (vault login token=… or a bare token).
	noKV bool
	// lastPos: the last positional argument is a secret (openssl passwd
	// -6 pw, mkpasswd pw).
	lastPos bool
	// kvValues: the value of every NAME=VALUE positional is a secret
	// (vault kv put path k=v, fly secrets set K=V).
	kvValues bool
	// bareSecret: a userPass value without the separator is a secret too
	// (httpie -A bearer -a TOKEN).
	bareSecret bool
	// keyNext are flags whose value is a secret unless it is a path or
	// a number: IBM ldapsearch's -P is the key file's password, OpenLDAP's
	// -P the protocol version (2 or 3).
	keyNext []string
	// valued are flags that take a value of their own (smbclient -m SMB3,
	// -c ls): the value is not counted as a positional argument for
	// hidePos.
	valued []string
	// nextUnlessLast: after the bare attached flag (mysql's -p), the next
	// argument is the password when another positional argument follows
	// it; the last one is the database, as mysql reads it.
	nextUnlessLast bool
	// glued: the one-letter flags of next also take an attached value
	// (sshpass -pPW, sqlcmd -PPW); off where one-letter prefixes start
	// other options (openssl -keyout is not -k eyout).
	glued bool
}

// tools is the table of programs' own secret-bearing arguments, each from
// the program's documentation (the corpus in testdata/redaction cites it).
var tools = func() map[string]toolRules {
	t := map[string]toolRules{}
	add := func(r toolRules, names ...string) {
		for _, n := range names {
			t[n] = r
		}
	}
	add(toolRules{attached: []string{"-p"}, nextUnlessLast: true}, "mysql", "mysqldump", "mysqladmin", "mysqlimport", "mysqlshow",
		"mysqlcheck", "mysqlslap", "mysqlpump", "mysqlbinlog", "mysqlsh", "mariadb", "mariadb-dump",
		"mariadb-admin", "mariadb-import", "mariadb-check", "mariadb-backup", "mariabackup", "xtrabackup")
	add(toolRules{next: []string{"-p"}, glued: true}, "sshpass")
	add(toolRules{next: []string{"-a", "--pass"}, after: []string{"auth"}, prefixes: []string{">"}}, "redis-cli", "keydb-cli", "valkey-cli")
	add(toolRules{next: []string{"-a", "--pass"}}, "redis-benchmark", "memtier_benchmark")
	add(toolRules{next: []string{"-p", "--password"}}, "docker login", "podman login", "nerdctl login",
		"buildah login", "skopeo login", "helm registry login", "oras login", "crane auth login",
		"oc login", "cf login", "az login", "finch login", "regctl registry login")
	add(toolRules{hidePos: []int{2}}, "cf auth")
	add(toolRules{next: []string{"-w"}, keyNext: []string{"-P"}, glued: true}, "ldapsearch", "ldapadd", "ldapmodify", "ldapdelete", "ldapwhoami",
		"ldapcompare", "ldapmodrdn", "ldapexop", "ldapurl")
	add(toolRules{next: []string{"-w", "-s", "-a"}, glued: true}, "ldappasswd")
	add(toolRules{next: []string{"-P", "-k", "-y"}, glued: true}, "ipmitool")
	add(toolRules{next: []string{"-p", "-k"}}, "ipmipower", "ipmi-sensors", "ipmi-chassis", "ipmi-sel",
		"ipmiconsole", "bmc-info", "ipmi-config", "ipmi-fru", "ipmi-oem", "ipmi-raw", "bmc-device")
	add(toolRules{next: []string{"-P", "-z", "-Z"}, glued: true}, "sqlcmd", "bcp", "osql")
	add(toolRules{next: []string{"-P"}, glued: true, hidePos: []int{3}}, "isql")
	add(toolRules{next: []string{"-t"}}, "doctl")
	add(toolRules{next: []string{"-p"}}, "mongo", "mongosh", "mongodump", "mongorestore", "mongoexport",
		"mongoimport", "mongostat", "mongotop", "mongofiles", "cqlsh", "cypher-shell", "rabbitmqadmin", "hdbsql", "racadm", "hydra", "evil-winrm", "crackmapexec", "nxc", "netexec", "twine",
		"usermod", "useradd", "ncftp", "ncftpget", "ncftpput", "rdesktop", "zabbix_sender")
	// influx (v2 CLI): -p is the setup password, -t --token's short form.
	add(toolRules{next: []string{"-p", "-t"}}, "influx")
	add(toolRules{next: []string{"-w"}}, "vsql")
	add(toolRules{after: []string{"using"}}, "db2")
	add(toolRules{slash: true}, "sqlplus", "rman", "expdp", "impdp", "exp", "imp", "sqlldr", "dgmgrl", "sql", "tkprof")
	add(toolRules{next: []string{"-P"}}, "mosquitto_pub", "mosquitto_sub", "mosquitto_rr", "zip", "unzip", "zipcloak") //nolint:misspell // Eclipse Mosquitto's clients are named so
	add(toolRules{attached: []string{"-p"}}, "7z", "7za", "7zz", "7zr", "rar", "unrar")
	add(toolRules{next: []string{"-N", "-P"}}, "ssh-keygen")
	add(toolRules{next: []string{"-k", "-K"}}, "openssl")
	add(toolRules{lastIfFlag: 'b'}, "htpasswd")
	// smbclient's flags that take a value (man smbclient): their values are
	// not the positional password after the service.
	add(toolRules{
		userPass: []string{"-U", "--user"}, sep: "%", hidePos: []int{2},
		valued: []string{
			"-L", "-M", "-m", "-c", "-W", "-I", "-p", "-s", "-O", "-t", "-b", "-D", "-T", "-R", "-n",
			"-i", "-l", "-A", "-d", "--list", "--message", "--max-protocol", "--command", "--workgroup",
			"--ip-address", "--port", "--configfile", "--socket-options", "--timeout", "--send-buffer",
			"--directory", "--tar", "--name-resolve", "--netbiosname", "--scope", "--log-basename",
			"--authentication-file", "--debuglevel",
		},
	}, "smbclient")
	add(toolRules{userPass: []string{"-U", "--user"}, sep: "%"}, "rpcclient", "smbcacls", "smbcquotas",
		"smbget", "net", "smbtree", "smbmap", "samba-tool", "wbinfo")
	add(toolRules{userPass: []string{"-u", "--user", "-U", "--proxy-user", "-E", "--cert", "--proxy-cert"}, sep: ":"}, "curl")
	add(toolRules{userPass: []string{"-u", "--user"}, sep: ":"}, "etcdctl")
	add(toolRules{userPass: []string{"-a", "--auth"}, sep: ":", bareSecret: true}, "http", "https", "httpie", "xh", "xhs")
	add(toolRules{userPass: []string{"-u", "--user"}, sep: ":"}, "ctr")
	add(toolRules{userPass: []string{"-n"}, sep: ":"}, "transmission-remote")
	add(toolRules{userPass: []string{"-U", "--user"}, sep: "%"}, "winexe")
	add(toolRules{userPass: []string{"--from-literal"}, sep: "=", bareSecret: true}, "kubectl create secret")
	// vault write is not here: it writes configuration (policies=…,
	// ttl=…) as much as secrets, so its key=value pairs go by the names.
	add(toolRules{kvValues: true}, "vault kv put", "vault kv patch", "flyctl secrets set",
		"fly secrets set", "doppler secrets set", "dokku config:set")
	add(toolRules{hidePos: []int{1}}, "vault operator unseal", "cargo login", "rclone obscure", "bw unlock")
	add(toolRules{hidePos: []int{2}}, "bw login", "glab variable set", "netlify env:set")
	add(toolRules{hidePos: []int{2, 3}}, "poetry config")
	add(toolRules{lastPos: true}, "openssl passwd", "mkpasswd")
	add(toolRules{next: []string{"-s"}}, "slappasswd")
	add(toolRules{next: []string{"-p"}}, "doveadm pw", "psexec", "psexec64", "oras", "youtube-dl", "yt-dlp", "gallery-dl")
	add(toolRules{next: []string{"-P"}, glued: true}, "tsql", "fisql", "freebcp", "sqsh", "mssql-cli", "mssql-scripter")
	add(toolRules{next: []string{"--value"}}, "az keyvault secret set", "aws ssm put-parameter")
	add(toolRules{next: []string{"-id"}}, "vault token create")
	add(toolRules{next: []string{"--plaintext"}}, "caddy hash-password")
	add(toolRules{userPass: []string{"-A", "-P"}, sep: ":"}, "ab")
	add(toolRules{userPass: []string{"-u"}, sep: ","}, "lftp")
	add(toolRules{prefixes: []string{"/p:", "/password:", "/pth:", "/gp:", "/gateway-password:"}}, "xfreerdp", "xfreerdp3", "wlfreerdp", "sdl-freerdp")
	add(toolRules{next: []string{"-c", "-A", "-X"}, glued: true}, "snmpwalk", "snmpget", "snmpset", "snmpbulkwalk",
		"snmpbulkget", "snmpgetnext", "snmptrap", "snmptable", "snmpdf", "snmpstatus", "snmpinform")
	add(toolRules{hidePos: []int{1}, noKV: true}, "vault login")
	add(toolRules{hidePos: []int{3, 4}}, "mc alias set", "mc config host add")
	add(toolRules{hidePos: []int{2}}, "rabbitmqctl add_user", "rabbitmqctl change_password", "rabbitmqctl authenticate_user")
	add(toolRules{hidePos: []int{2}}, "wpa_passphrase")
	add(toolRules{next: []string{"-b", "--body"}}, "gh secret set")
	add(toolRules{next: []string{"-ap", "-xp"}}, "swaks", "sendemail")
	add(toolRules{hidePos: []int{2}}, "zkCli.sh addauth")
	return t
}()

// toolPrefixes are the leading words of the table's subcommand keys
// ("mc", "mc alias" for "mc alias set"): a command line walks through
// them to reach the key.
var toolPrefixes = func() map[string]bool {
	p := map[string]bool{}
	for k := range tools {
		for i := strings.IndexByte(k, ' '); i > 0; {
			p[k[:i]] = true
			j := strings.IndexByte(k[i+1:], ' ')
			if j < 0 {
				break
			}
			i += 1 + j
		}
	}
	return p
}()

// baseName is the program name of an argv[0] or positional argument.
func baseName(a string) string {
	if i := strings.LastIndexByte(a, '/'); i >= 0 {
		a = a[i+1:]
	}
	return a
}

// hasFlag tells whether rules' flag list holds f.
func hasFlag(list []string, f string) bool {
	return slices.Contains(list, f)
}

// flagValue matches a flag argument against list: the flag itself
// (value next), the flag with an attached value (-aVALUE for one-letter
// flags, --flag=VALUE) and returns the value.
func flagValue(list []string, a string, glued bool) (value string, attached, ok bool) {
	for _, f := range list {
		switch {
		case a == f:
			return "", false, true
		case strings.HasPrefix(a, f+"="):
			return a[len(f)+1:], true, true
		case glued && len(f) == 2 && f[0] == '-' && f[1] != '-' && len(a) > 2 && strings.HasPrefix(a, f):
			return a[2:], true, true
		}
	}
	return "", false, false
}
