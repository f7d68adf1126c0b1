// Command gotar writes the binary layer exactly as upstream ko does
// (ko-build/ko pkg/build/gobuild.go tarBinary, linux case), so the tests can
// compare its sha256 with the diff id of the layer our ko produced.
//
// Usage: gotar BINARY NAME OUT.tar
package main

import (
	"archive/tar"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: gotar BINARY NAME OUT.tar")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2], os.Args[3]); err != nil {
		fmt.Fprintln(os.Stderr, "gotar:", err)
		os.Exit(1)
	}
}

func run(binary, name, out string) error {
	data, err := os.ReadFile(binary)
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	if err := tw.WriteHeader(&tar.Header{
		Name:     "ko-app",
		Typeflag: tar.TypeDir,
		Mode:     0555,
	}); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{
		Name:     "/ko-app/" + name,
		Size:     int64(len(data)),
		Typeflag: tar.TypeReg,
		Mode:     0555,
	}); err != nil {
		return err
	}
	if _, err := tw.Write(data); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}
