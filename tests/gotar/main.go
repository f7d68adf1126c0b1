// Command gotar writes the binary layer exactly as upstream ko does
// (ko-build/ko pkg/build/gobuild.go tarBinary, linux case), so the tests can
// compare its sha256 with the diff id of the layer our ko produced; and
// decompresses a gzip stream with Go's compress/gzip, as containerd and
// go-containerregistry read ko's layers.
//
// Usage: gotar BINARY NAME OUT.tar
//
//	gotar gunzip IN.gz OUT
package main

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"os"
)

func main() {
	var err error
	switch {
	case len(os.Args) == 4 && os.Args[1] == "gunzip":
		err = gunzip(os.Args[2], os.Args[3])
	case len(os.Args) == 4:
		err = run(os.Args[1], os.Args[2], os.Args[3])
	default:
		fmt.Fprintln(os.Stderr, "usage: gotar BINARY NAME OUT.tar | gotar gunzip IN.gz OUT")
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gotar:", err)
		os.Exit(1)
	}
}

func gunzip(in, out string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	o, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := io.Copy(o, zr); err != nil {
		return err
	}
	if err := zr.Close(); err != nil {
		return err
	}
	return o.Close()
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
