// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package procsnap // import "github.com/oomsight/oomsight/internal/procsnap"

import (
	"regexp"
	"strings"
)

var (
	// identifier is a variable, key or flag name: FOO_TOKEN, auth.password.
	identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)
	// credentialName is a bare name that may be a credential's:
	// aws_secret_access_key, wifi-sec.psk, 802-1x.password.
	credentialName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
	// userPassAt is user:password before an @: URLs (scheme://u:pw@host,
	// redis://:pw@host) and the same without a scheme (Go DSNs
	// u:pw@tcp(db:3306)/x, impacket's dom/u:pw@host). The password does
	// not start with / (scheme://).
	userPassAt = regexp.MustCompile(`([^\s:@/'"=,;()]*):([^\s@/][^\s@]*)@`)
	// redisPassOnly is a Redis URI whose userinfo has no colon: redis-cli
	// reads it as the password, not a user (parseRedisUri in redis's
	// src/cli_common.c: "redis://password@host:port", the form its users
	// write, e.g. https://gist.github.com/sayuj1/b3e34c88ed5754c3146d7a84d2fbb46d).
	redisPassOnly = regexp.MustCompile(`(?i)(\b(?:rediss?|valkeys?)://)([^\s:@/]+)@`)
	// scpLike is an scp-style remote, scheme:user@host:path (restic
	// sftp:user@host:/srv, rclone, rsync): the part after the scheme is a
	// user name, not a password.
	scpLike = regexp.MustCompile(`^(?i:sftp|ssh|scp|rsync|git|hg|svn\+ssh)$`)
	// keyValue is NAME=VALUE inside a longer value, after a separator:
	// libpq "host=db password=x", mount -o user=u,password=x, JDBC
	// ";password=x", query strings "?token=x&page=2", npm's
	// "//registry/:_authToken=x", httpie's api_key==x, quoted values.
	keyValue = regexp.MustCompile(`(^|[\s,;&?:{(|])([A-Za-z_][A-Za-z0-9_.\-]*)(\s*(?:=>|=+)\s*)("[^"]*"|'[^']*'|[^\s,;&#)}"']*)`)
	// jsonMember is "name": "value" in a JSON body.
	jsonMember = regexp.MustCompile(`("([A-Za-z_][A-Za-z0-9_.\-]*)"\s*:\s*)"((?:[^"\\]|\\.)*)"`)
	// header is an HTTP header as curl -H, httpie or grpcurl take it:
	// Name: value (or Name:value).
	header = regexp.MustCompile(`^\s*([A-Za-z][A-Za-z0-9_-]*)\s*:\s*(\S.*)$`)
	// authScheme is an authorization scheme before its credentials.
	authScheme = regexp.MustCompile(`(?i)^(bearer|basic|token|digest|negotiate|ntlm|apikey|sso-key|splunk|ssws|key)\s+\S`)
	// scheme is an authorization value anywhere: Bearer <token>.
	scheme = regexp.MustCompile(`(?i)\b(bearer|basic|token)(\s+)([A-Za-z0-9._~+/=-]{8,})`)
	// sqlPassword is a password in SQL (mysql -e, psql -c): IDENTIFIED BY
	// 'pw', PASSWORD 'pw', SET PASSWORD FOR u = 'pw'.
	sqlPassword = regexp.MustCompile(`(?i)(\bIDENTIFIED\s+(?:WITH\s+\S+\s+)?BY\s*|\bPASSWORD(?:\s+FOR\s+\S+)?(?:\s+|\s*=\s*))('[^']*'|"[^"]*")`)
	// streamKey is the stream key of an RTMP ingest URL (the path is the
	// credential).
	streamKey = regexp.MustCompile(`(rtmps?://(?:a\.rtmp\.youtube\.com/live2|[a-z0-9.-]*\.?live\.twitch\.tv/app|live-api-s\.facebook\.com(?::443)?/rtmp|[^/\s]+/live2)/)[^\s"'?]+`)
	// pemKey is an inline PEM private key.
	pemKey = regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)`)
	// webhook are URLs whose path is the credential.
	webhook = regexp.MustCompile(`((?:hooks\.slack\.com/(?:services|workflows|triggers)/|discord(?:app)?\.com/api/webhooks/[0-9]+/|api\.telegram\.org/bot|outlook\.office(?:365)?\.com/webhook/|webhook\.office\.com/webhookb2/))[^\s"'?#]+`)
	// tokenShape are tokens recognizable by shape alone: JWTs and the
	// prefixed keys of services that publish their token format so that
	// secret scanners find them. Each needs a long random body, so no
	// ordinary word matches. Where each shape is documented:
	//   - GitHub ghp_/gho_/ghu_/ghs_/ghr_, base62 body:
	//     https://github.blog/changelog/2021-03-31-authentication-token-format-updates-are-generally-available/
	//   - GitLab glpat- (and glrt-, gldt-, … of the same scheme):
	//     https://gitlab.com/gitlab-org/gitlab/-/issues/342327,
	//     https://docs.gitlab.com/ee/user/admin_area/settings/account_and_limit_settings.html#personal-access-token-prefix
	//   - Slack bot/user/app tokens xoxb-/xoxp-/xapp-: https://api.slack.com/authentication/token-types
	//   - npm npm_ + 36 base62 (GitHub's format, CRC32 in the last 6):
	//     https://github.blog/2021-09-23-announcing-npms-new-access-token-format/
	//   - SonarQube squ_ (user), sqa_ (global analysis), sqp_ (project
	//     analysis), 40 hex: https://docs.sonarsource.com/sonarqube-server/2026.2/user-guide/managing-tokens,
	//     https://docs.aws.amazon.com/secretsmanager/latest/userguide/mes-partner-SonarQubeToken.html
	//   - Stripe secret and restricted keys sk_live_/rk_live_ (and _test_):
	//     https://docs.stripe.com/keys, https://gitlab.com/gitlab-org/gitlab/-/issues/458019
	//   - Google API keys, AIza + 35 (39 in all): https://cloud.google.com/docs/authentication/api-keys
	//   - OpenAI sk-, sk-proj-, sk-svcacct-, sk-admin-; Anthropic sk-ant-:
	//     https://platform.openai.com/docs/api-reference/authentication
	//   - HashiCorp Vault hvs./hvb./hvr. (1.10+); before, s./b. + 24
	//     base62: https://developer.hashicorp.com/vault/docs/upgrading/upgrade-to-1.0.0,
	//     https://developer.hashicorp.com/vault/docs/concepts/tokens
	//   - Twilio API key SID, SK + 32 hex (the key's secret has no shape):
	//     https://docs.aws.amazon.com/secretsmanager/latest/userguide/mes-partner-TwilioApiKey.html
	//   - SendGrid SG.<22>.<43>, 69 characters: https://www.twilio.com/docs/sendgrid/ui/account-and-settings/api-keys
	//   - DigitalOcean dop_v1_ + 64 hex (doo_v1_, dor_v1_ for OAuth):
	//     https://gitlab.com/gitlab-org/security-products/analyzers/secrets/-/merge_requests/178,
	//     https://docs.digitalocean.com/reference/api/create-personal-access-token/
	//   - AWS access key ids AKIA/ASIA + 16: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html
	tokenShape = regexp.MustCompile(strings.Join([]string{
		`eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*`, // JWT
		`\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}`,              // GitHub
		`\bgithub_pat_[A-Za-z0-9_]{20,}`,
		`\bgl(?:pat|rt|dt|ptt|soat|ft|cbt|imt|agent)-[A-Za-z0-9_-]{16,}`, // GitLab
		`\bxox[abposre]-[A-Za-z0-9-]{10,}`,                               // Slack
		`\bxapp-[0-9]-[A-Za-z0-9-]{10,}`,
		`\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}`, // Stripe
		`\b(?:AKIA|ASIA)[0-9A-Z]{16}\b`,          // AWS key ids
		`\bAIza[0-9A-Za-z_-]{35}`,                // Google API keys
		`\bya29\.[0-9A-Za-z_-]{20,}`,             // Google OAuth
		`\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}`,
		`\bhv[sbr]\.[A-Za-z0-9_-]{20,}`, // Vault
		`\bdo[por]_v1_[a-f0-9]{64}`,     // DigitalOcean
		`\bnpm_[A-Za-z0-9]{36}`,
		`\bsq[upa]_[a-f0-9]{40}`, // SonarQube
		`\bSK[0-9a-f]{32}\b`,     // Twilio API key SID
		`\bpypi-[A-Za-z0-9_-]{50,}`,
		`\bdckr_pat_[A-Za-z0-9_-]{20,}`,
		`\btskey-[A-Za-z0-9-]{20,}`, // Tailscale
		`\bshp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}`,
		`\bglsa_[A-Za-z0-9_]{32,}`, // Grafana
		`\bhf_[A-Za-z0-9]{30,}`,    // Hugging Face
	}, "|"))
	// randomShape are shapes whose prefix is short enough to start
	// ordinary names (sk-learn-…, s.somepackage…): a match is taken only
	// when its body mixes upper case, lower case and digits, as random
	// base62 does: a 48-character OpenAI key body lacks one of them with
	// probability about 2·10⁻⁴, a 24-character Vault token about 1.5 %;
	// a name built of words nearly always lacks one.
	randomShape = regexp.MustCompile(
		`\bsk-(?:ant-|proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}` + // OpenAI, Anthropic
			`|\b[sb]\.[A-Za-z0-9]{24}\b`) // Vault before 1.10
)

// redactInside applies the rules that find credentials inside an
// argument or a value.
func redactInside(a string) string {
	if a == "" {
		return a
	}
	a = pemKey.ReplaceAllString(a, Redacted)
	a = redactHeader(a)
	a = redactUserPassAt(a)
	a = redisPassOnly.ReplaceAllString(a, "${1}"+Redacted+"@")
	a = keyValue.ReplaceAllStringFunc(a, func(m string) string {
		sub := keyValue.FindStringSubmatch(m)
		v := sub[4]
		q := ""
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') {
			q, v = v[:1], v[1:len(v)-1]
		}
		if s := classify(sub[2]); s == plain || keepValue(s, v) {
			if n := strings.ToLower(sub[2]); (n == "user" || n == "username") && strings.Contains(v, "%") {
				// mount.cifs user=name%password
				return sub[1] + sub[2] + sub[3] + q + hideAfterSep(v, "%") + q
			}
			return m
		}
		return sub[1] + sub[2] + sub[3] + q + Redacted + q
	})
	a = jsonMember.ReplaceAllStringFunc(a, func(m string) string {
		sub := jsonMember.FindStringSubmatch(m)
		if s := classify(sub[2]); s == plain || keepValue(s, sub[3]) {
			return m
		}
		return sub[1] + `"` + Redacted + `"`
	})
	a = sqlPassword.ReplaceAllString(a, "${1}'"+Redacted+"'")
	a = streamKey.ReplaceAllString(a, "${1}"+Redacted)
	a = scheme.ReplaceAllString(a, "${1}${2}"+Redacted)
	a = webhook.ReplaceAllString(a, "${1}"+Redacted)
	a = tokenShape.ReplaceAllString(a, Redacted)
	return randomShape.ReplaceAllStringFunc(a, func(m string) string {
		if mixed(m[2:]) {
			return Redacted
		}
		return m
	})
}

// mixed tells whether s has an upper-case letter, a lower-case letter
// and a digit, as random tokens do and words do not.
func mixed(s string) bool {
	var up, low, dig bool
	for _, c := range s {
		switch {
		case c >= 'A' && c <= 'Z':
			up = true
		case c >= 'a' && c <= 'z':
			low = true
		case c >= '0' && c <= '9':
			dig = true
		}
	}
	return up && low && dig
}

// redactHeader hides the value of a credential header (PRIVATE-TOKEN:
// x, X-API-KEY: x, Cookie: x), keeping an authorization scheme's name
// (Authorization: Bearer ***). A one-word keyish name (key:value, a
// label) is not taken for a header.
func redactHeader(a string) string {
	m := header.FindStringSubmatch(a)
	if m == nil {
		return a
	}
	name, value := m[1], m[2]
	s := classify(name)
	if s == plain || (s == keyish && len(nameWords(name)) < 2 && !strings.EqualFold(name, "authorization")) || keepValue(s, value) {
		return a
	}
	prefix := a[:len(a)-len(value)]
	if sm := authScheme.FindStringSubmatch(value); sm != nil {
		return prefix + sm[1] + " " + Redacted
	}
	return prefix + Redacted
}

// redactUserPassAt hides the password of user:password@host, except
// in an image digest (image:tag@sha256:…).
func redactUserPassAt(a string) string {
	idx := userPassAt.FindAllStringSubmatchIndex(a, -1)
	if idx == nil {
		return a
	}
	var b strings.Builder
	last := 0
	for _, m := range idx {
		end := m[1]
		if strings.HasPrefix(a[end:], "sha256:") || strings.HasPrefix(a[end:], "sha512:") ||
			(m[2] == 0 && scpLike.MatchString(a[m[2]:m[3]])) {
			continue
		}
		b.WriteString(a[last:m[4]])
		b.WriteString(Redacted)
		b.WriteString("@")
		last = end
	}
	b.WriteString(a[last:])
	return b.String()
}
