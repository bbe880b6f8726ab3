// A Go module with a real dependency (go-cmp, pinned by its go.sum) and a bug: Clamp returns lo above the range, so
// TestClampAbove and TestClampAll fail until it returns hi. Its setup fetches the dependency through the setup's
// egress (the Go module proxy); its checks then run offline from the environment's module cache.

export const GO_MODULE_FILES: Record<string, string> = {
  'go.mod': 'module example.com/mathx\n\ngo 1.22\n\nrequire github.com/google/go-cmp v0.7.0\n',
  'go.sum': [
    'github.com/google/go-cmp v0.7.0 h1:wk8382ETsv4JYUZwIsn6YpYiWiBsYLSJiTsyBybVuN8=',
    'github.com/google/go-cmp v0.7.0/go.mod h1:pXiqmnSA92OHEEa9HXL2W4E7lf9JzCmGVUdgjX3N/iU=',
    '',
  ].join('\n'),
  'mathx.go': `// Package mathx holds small integer helpers.
package mathx

// Clamp returns v limited to the range [lo, hi].
func Clamp(v, lo, hi int) int {
\tif v < lo {
\t\treturn lo
\t}
\tif v > hi {
\t\treturn lo
\t}
\treturn v
}
`,
  'mathx_test.go': `package mathx

import (
\t"testing"

\t"github.com/google/go-cmp/cmp"
)

func TestClampBelow(t *testing.T) {
\tif got := Clamp(-5, 0, 10); got != 0 {
\t\tt.Errorf("Clamp(-5, 0, 10) = %d, want 0", got)
\t}
}

func TestClampAbove(t *testing.T) {
\tif got := Clamp(15, 0, 10); got != 10 {
\t\tt.Errorf("Clamp(15, 0, 10) = %d, want 10", got)
\t}
}

func TestClampAll(t *testing.T) {
\tgot := []int{Clamp(-1, 0, 3), Clamp(2, 0, 3), Clamp(9, 0, 3)}
\tif diff := cmp.Diff([]int{0, 2, 3}, got); diff != "" {
\t\tt.Errorf("Clamp mismatch (-want +got):\\n%s", diff)
\t}
}
`,
};

/** The fix: above the range, hi. */
export const GO_MODULE_FIX = GO_MODULE_FILES['mathx.go'].replace(
  '\t\treturn lo\n\t}\n\treturn v',
  '\t\treturn hi\n\t}\n\treturn v',
);
