// Command vcsim starts govmomi's vCenter simulator for vscout's tests and benchmarks.
//
// It is built from Debian's golang-github-vmware-govmomi-dev package (GOPATH mode, no
// network) and prints two lines, "VCSIM_URL=<url>" and "VCSIM_THUMBPRINT_SHA256=<AB:CD:…>",
// once the SOAP endpoint is listening, then serves until it is killed or its standard input closes.
package main

import (
	"crypto/sha256"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"net/url"
	"os"
	"strings"

	"github.com/vmware/govmomi/simulator"
)

func main() {
	dc := flag.Int("dc", 1, "datacenters")
	cluster := flag.Int("cluster", 1, "clusters per datacenter")
	clusterHost := flag.Int("host", 3, "hosts per cluster")
	standalone := flag.Int("standalone-host", 1, "standalone hosts per datacenter")
	vm := flag.Int("vm", 2, "VMs per resource pool (each cluster and standalone host has one)")
	ds := flag.Int("ds", 1, "datastores")
	pg := flag.Int("pg", 1, "distributed portgroups per datacenter")
	pool := flag.Int("pool", 0, "child resource pools per cluster")
	folder := flag.Int("folder", 0, "datacenters placed inside folders")
	esx := flag.Bool("esx", false, "simulate a standalone ESXi host instead of vCenter")
	listen := flag.String("l", "127.0.0.1:0", "listen address")
	certFile := flag.String("tlscert", "", "TLS certificate (PEM); default: Go's built-in localhost certificate")
	keyFile := flag.String("tlskey", "", "TLS private key (PEM)")
	username := flag.String("username", "user", "login user name")
	password := flag.String("password", "pass", "login password")
	exitOnEOF := flag.Bool("exit-on-eof", true, "exit when standard input closes (so a dying test never leaks vcsim)")
	flag.Parse()

	var model *simulator.Model
	if *esx {
		model = simulator.ESX()
		model.Machine = *vm
		model.Datastore = *ds
	} else {
		model = simulator.VPX()
		model.Datacenter = *dc
		model.Cluster = *cluster
		model.ClusterHost = *clusterHost
		model.Host = *standalone
		model.Machine = *vm
		model.Datastore = *ds
		model.Portgroup = *pg
		model.Pool = *pool
		model.Folder = *folder
	}
	if err := model.Create(); err != nil {
		log.Fatalf("vcsim: create model: %v", err)
	}
	defer model.Remove()

	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*username, *password)}
	model.Service.TLS = new(tls.Config)
	if *certFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			log.Fatalf("vcsim: load certificate: %v", err)
		}
		model.Service.TLS.Certificates = []tls.Certificate{cert}
	}

	server := model.Service.NewServer()
	defer server.Close()

	u := *server.URL
	u.User = nil
	fmt.Printf("VCSIM_URL=%s\n", u.String())
	// The thumbprint as vCenter shows it, so that tests can pin the built-in certificate.
	sum := sha256.Sum256(server.Certificate().Raw)
	hexes := make([]string, len(sum))
	for i, b := range sum {
		hexes[i] = fmt.Sprintf("%02X", b)
	}
	fmt.Printf("VCSIM_THUMBPRINT_SHA256=%s\n", strings.Join(hexes, ":"))
	os.Stdout.Sync()

	if *exitOnEOF {
		_, _ = io.Copy(io.Discard, os.Stdin)
		return
	}
	select {}
}
