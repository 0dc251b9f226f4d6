// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package k8seventsexporter // import "github.com/oomsight/oomsight/exporter/k8seventsexporter"

import (
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Ways to reach the API server, spelled as contrib's k8s components
// (k8s_attributes, k8s_events receiver) spell their auth_type.
const (
	// AuthServiceAccount is the pod's own ServiceAccount token and the
	// in-cluster address (KUBERNETES_SERVICE_HOST): the DaemonSet's way.
	AuthServiceAccount = "serviceAccount"
	// AuthKubeConfig is a kubeconfig file: kube_config_path, else
	// $KUBECONFIG, else ~/.kube/config (clientcmd's loading rules).
	AuthKubeConfig = "kubeConfig"
)

// The API server's own limits on an Event (k8s.io/kubernetes
// pkg/apis/core/validation/events.go, v1.35): a longer field is refused.
const (
	reportingInstanceLimit = 128
)

// Config is the k8s_oom_events exporter's configuration.
type Config struct {
	TimeoutConfig exporterhelper.TimeoutConfig                             `mapstructure:",squash"`
	QueueConfig   configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	RetryConfig   configretry.BackOffConfig                                `mapstructure:"retry_on_failure"`

	// AuthType is how the exporter reaches the API server:
	// serviceAccount (default) or kubeConfig.
	AuthType string `mapstructure:"auth_type"`
	// KubeConfigPath is the kubeconfig file for auth_type kubeConfig;
	// empty: $KUBECONFIG, else ~/.kube/config.
	KubeConfigPath string `mapstructure:"kube_config_path"`
	// Context is the kubeconfig context (auth_type kubeConfig); empty: its
	// current-context.
	Context string `mapstructure:"context"`
	// QPS and Burst bound the requests per second to the API server
	// (client-go's token bucket). Kills are rare; the bound protects the
	// API server from a node whose pods are killed in a loop.
	QPS   float32 `mapstructure:"qps"`
	Burst int     `mapstructure:"burst"`

	// ReportingController is the Event's reportingController (kubectl
	// describe's "From"): a qualified name.
	ReportingController string `mapstructure:"reporting_controller"`
	// ReportingInstance is the Event's reportingInstance. Empty: the
	// record's k8s.node.name resource attribute (the agent's resource
	// processor sets it from the downward API), else the host name.
	ReportingInstance string `mapstructure:"reporting_instance"`
	// CacheSize bounds the series cache: how many (pod, container, action)
	// Events the exporter remembers to patch instead of creating anew.
	CacheSize int `mapstructure:"cache_size"`
	// IncludeCommandLine keeps the killed process's (redacted) command
	// line in the Event's note. Off by default: everyone who may read
	// Events in the pod's namespace reads the note, a wider audience than
	// the record's backend; the process name and pid stay.
	IncludeCommandLine bool `mapstructure:"include_command_line"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ component.Config = (*Config)(nil)

// Validate names the key and the fix of every bad setting.
func (c *Config) Validate() error {
	var errs []error
	switch c.AuthType {
	case AuthServiceAccount:
		if c.KubeConfigPath != "" || c.Context != "" {
			errs = append(errs, fmt.Errorf("kube_config_path and context apply to auth_type %q only; remove them or set auth_type: %s", AuthKubeConfig, AuthKubeConfig))
		}
	case AuthKubeConfig:
	default:
		errs = append(errs, fmt.Errorf("auth_type %q: want %q (in a pod) or %q", c.AuthType, AuthServiceAccount, AuthKubeConfig))
	}
	if c.QPS <= 0 {
		errs = append(errs, fmt.Errorf("qps %v: want more than 0 requests per second (default 5)", c.QPS))
	}
	if c.Burst < 1 {
		errs = append(errs, fmt.Errorf("burst %d: want at least 1 (default 10)", c.Burst))
	}
	if msgs := validation.IsQualifiedName(c.ReportingController); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("reporting_controller %q is not a qualified name (the API server refuses it): %s", c.ReportingController, strings.Join(msgs, "; ")))
	}
	if len(c.ReportingInstance) > reportingInstanceLimit {
		errs = append(errs, fmt.Errorf("reporting_instance: %d bytes, the API server accepts at most %d", len(c.ReportingInstance), reportingInstanceLimit))
	}
	if c.CacheSize < 1 {
		errs = append(errs, fmt.Errorf("cache_size %d: want at least 1 (default %d)", c.CacheSize, defaultCacheSize))
	}
	return errors.Join(errs...)
}
