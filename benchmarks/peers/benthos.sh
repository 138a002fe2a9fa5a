#!/usr/bin/env bash
# Builds Benthos v4.27.0 (MIT) with only the components benthos_sql needs into .cache/peers/benthos/benthos:
# io, kafka (kafka_franz), pure, sql/base (sql_raw without bundled drivers) and github.com/lib/pq for postgres.
# `go get .` resolves just those imports; a full `go mod tidy` would pull every optional driver (~2.3 GB).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="$ROOT/.cache/peers/benthos"
VERSION="v4.27.0"
if [[ -x "$OUT/benthos" ]] && "$OUT/benthos" --version 2>/dev/null | grep -q "${VERSION#v}"; then
    echo "benthos: $OUT/benthos is already built"
    exit 0
fi
mkdir -p "$OUT/src"
cd "$OUT/src"
cat > main.go <<'GO'
// A Benthos binary with only the components the pstt benchmark's benthos_sql variant uses.
package main

import (
	"context"

	_ "github.com/benthosdev/benthos/v4/public/components/io"
	_ "github.com/benthosdev/benthos/v4/public/components/kafka"
	_ "github.com/benthosdev/benthos/v4/public/components/pure"
	_ "github.com/benthosdev/benthos/v4/public/components/sql/base"
	"github.com/benthosdev/benthos/v4/public/service"
	_ "github.com/lib/pq"
)

func main() {
	service.RunCLI(context.Background())
}
GO
[[ -f go.mod ]] || go mod init pstt-bench-benthos
go get "github.com/benthosdev/benthos/v4@$VERSION" github.com/lib/pq
go get .
go build -o "$OUT/benthos" .
echo "benthos: built $OUT/benthos"
