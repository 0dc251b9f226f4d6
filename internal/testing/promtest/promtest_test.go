// Copyright The oomsight Authors
// SPDX-License-Identifier: Apache-2.0

package promtest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestQuery runs the real Prometheus: an instant vector comes back as
// samples, a refused query and a range vector as errors.
func TestQuery(t *testing.T) {
	p, err := Start(t, "global:\n  scrape_interval: 1s\n")
	require.NoError(t, err)
	ctx := context.Background()
	var got []Sample
	require.Eventually(t, func() bool {
		got, err = p.Query(ctx, `label_replace(vector(42), "who", "oomsight", "", "")`)
		return err == nil
	}, 30*time.Second, 200*time.Millisecond, "prometheus never answered: %v", err)
	assert.Equal(t, []Sample{{Metric: map[string]string{"who": "oomsight"}, Value: 42}}, got)

	got, err = p.Query(ctx, `absent_series_here`)
	require.NoError(t, err)
	assert.Empty(t, got)

	_, err = p.Query(ctx, `sum(`)
	assert.ErrorContains(t, err, "parse error")
	_, err = p.Query(ctx, `vector(1)[1m:]`)
	assert.ErrorContains(t, err, "want an instant vector")
}
