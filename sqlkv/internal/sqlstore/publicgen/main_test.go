package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// Each backend's store_gen.go is what the template renders: edit the
// template and run go generate ./sqlkv/..., never the files.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	for pkg := range backends {
		want, err := render(pkg)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("..", "..", "..", pkg, "store_gen.go")
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is not what publicgen renders: run go generate ./sqlkv/...", path)
		}
	}
}
