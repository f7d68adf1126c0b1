// Command gotar writes layers exactly as upstream ko does (ko-build/ko pkg/build/gobuild.go:
// tarBinary and tarKoData, for Linux and Windows images, with linux_capabilities), so the tests
// can compare their sha256 with the diff ids of the layers our ko produced; lists the PAX
// records of a tar as Go's archive/tar reads them; and decompresses a gzip stream with Go's
// compress/gzip, as containerd and go-containerregistry read ko's layers.
//
// Usage:
//
//	gotar [-os OS] [-caps HEX] BINARY NAME OUT.tar   the binary layer of /ko-app/NAME
//	gotar kodata [-os OS] [-mtime SECONDS] DIR OUT.tar   the kodata layer of DIR/kodata
//	gotar pax IN.tar        one JSON object per entry: {"name", "type", "pax": {key: base64}}
//	gotar gunzip IN.gz OUT
package main

import (
	"archive/tar"
	"compress/gzip"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"time"
)

// userOwnerAndGroupSID is upstream's security descriptor for Windows files (O:BUG:BU).
const userOwnerAndGroupSID = "AQAAgBQAAAAkAAAAAAAAAAAAAAABAgAAAAAABSAAAAAhAgAAAQIAAAAAAAUgAAAAIQIAAA=="

func main() {
	var err error
	args := os.Args[1:]
	switch {
	case len(args) == 3 && args[0] == "gunzip":
		err = gunzip(args[1], args[2])
	case len(args) == 2 && args[0] == "pax":
		err = pax(args[1])
	case len(args) > 0 && args[0] == "kodata":
		fs := flag.NewFlagSet("kodata", flag.ExitOnError)
		goos := fs.String("os", "linux", "image os")
		mtime := fs.Int64("mtime", 0, "kodata mtime (KO_DATA_DATE_EPOCH)")
		_ = fs.Parse(args[1:])
		if fs.NArg() != 2 {
			usage()
		}
		err = kodata(fs.Arg(0), fs.Arg(1), *goos, time.Unix(*mtime, 0))
	default:
		fs := flag.NewFlagSet("gotar", flag.ExitOnError)
		goos := fs.String("os", "linux", "image os")
		caps := fs.String("caps", "", "security.capability xattr, in hex")
		_ = fs.Parse(args)
		if fs.NArg() != 3 {
			usage()
		}
		err = binaryLayer(fs.Arg(0), fs.Arg(1), fs.Arg(2), *goos, *caps)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gotar:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: gotar [-os OS] [-caps HEX] BINARY NAME OUT.tar | gotar kodata [-os OS] [-mtime S] DIR OUT.tar | gotar pax IN.tar | gotar gunzip IN.gz OUT")
	os.Exit(2)
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

func pax(in string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	enc := json.NewEncoder(os.Stdout)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		records := map[string]string{}
		for k, v := range h.PAXRecords {
			records[k] = base64.StdEncoding.EncodeToString([]byte(v))
		}
		if err := enc.Encode(map[string]any{"name": h.Name, "type": string(h.Typeflag), "pax": records}); err != nil {
			return err
		}
	}
}

// binaryLayer is upstream's tarBinary.
func binaryLayer(binary, name, out, goos, capsHex string) error {
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
	file := "/ko-app/" + name
	dirs := []string{"ko-app"}
	if goos == "windows" {
		dirs = []string{"Hives", "Files", "Files/ko-app"}
		file = "Files" + file
	}
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0555}); err != nil {
			return err
		}
	}
	header := &tar.Header{Name: file, Size: int64(len(data)), Typeflag: tar.TypeReg, Mode: 0555, PAXRecords: map[string]string{}}
	switch {
	case goos == "windows":
		header.PAXRecords["MSWINDOWS.rawsd"] = userOwnerAndGroupSID
	case capsHex != "":
		xattr, err := hex.DecodeString(capsHex)
		if err != nil {
			return err
		}
		header.PAXRecords["SCHILY.xattr.security.capability"] = string(xattr)
	}
	if err := tw.WriteHeader(header); err != nil {
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

// kodata is upstream's tarKoData and walkRecursive (symlinks followed on Linux, skipped on
// Windows; the allowed-root check is left out: the fixtures' links stay inside).
func kodata(dir, out, goos string, mtime time.Time) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	chroot := "/var/run/ko"
	dirs := []string{"/var", "/var/run", "/var/run/ko"}
	if goos == "windows" {
		chroot = "Files/var/run/ko"
		dirs = []string{"Hives", "Files", "Files/var", "Files/var/run", "Files/var/run/ko"}
	}
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0555, ModTime: mtime}); err != nil {
			return err
		}
	}
	root := filepath.Join(dir, "kodata")
	if _, err := os.Stat(root); err == nil {
		if err := walk(tw, root, chroot, goos, mtime); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

func walk(tw *tar.Writer, root, chroot, goos string, mtime time.Time) error {
	return filepath.Walk(root, func(hostPath string, info os.FileInfo, err error) error {
		if hostPath == root {
			return nil
		}
		if err != nil {
			return err
		}
		newPath := path.Join(chroot, filepath.ToSlash(hostPath[len(root):]))
		if info.Mode().IsDir() {
			return tw.WriteHeader(&tar.Header{Name: newPath, Typeflag: tar.TypeDir, Mode: 0555, ModTime: mtime})
		}
		if goos == "windows" && info.Mode()&os.ModeSymlink != 0 {
			return nil
		}
		evalPath, err := filepath.EvalSymlinks(hostPath)
		if err != nil {
			return err
		}
		info, err = os.Stat(evalPath)
		if err != nil {
			return err
		}
		if info.Mode().IsDir() {
			if err := tw.WriteHeader(&tar.Header{Name: newPath, Typeflag: tar.TypeDir, Mode: 0555, ModTime: mtime}); err != nil {
				return err
			}
			return walk(tw, evalPath, newPath, goos, mtime)
		}
		data, err := os.ReadFile(evalPath)
		if err != nil {
			return err
		}
		header := &tar.Header{Name: newPath, Size: int64(len(data)), Typeflag: tar.TypeReg, Mode: 0555, ModTime: mtime}
		if goos == "windows" {
			header.PAXRecords = map[string]string{"MSWINDOWS.rawsd": userOwnerAndGroupSID}
		}
		if err := tw.WriteHeader(header); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
}
