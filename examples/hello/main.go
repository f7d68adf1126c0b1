// Command hello prints a greeting and the file ko ships next to it in $KO_DATA_PATH.
package main

import (
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	fmt.Println("Hello from a ko-built image!")
	if dir := os.Getenv("KO_DATA_PATH"); dir != "" {
		if b, err := os.ReadFile(filepath.Join(dir, "motd.txt")); err == nil {
			fmt.Print(string(b))
		}
	}
}
