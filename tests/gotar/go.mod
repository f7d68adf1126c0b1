module example.com/gotar

go 1.22
