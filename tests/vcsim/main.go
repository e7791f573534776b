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
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
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
	variety := flag.Bool("variety", false, "give the VMs an estate's spread of guest OSes, firmware, vCPUs, memory and disk sizes (vcsim makes them all alike)")
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
	if *variety {
		vary()
	}

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

// vary gives the VMs what an estate has and vcsim's model does not: several guest OSes
// (and one vSphere cannot name), some UEFI firmware, a spread of vCPUs, memory and disk
// sizes, guest file systems as VMware Tools reports them (guest.disk, which vcsim leaves
// empty) and snapshot trees. Deterministic: the same options give the same estate.
func vary() {
	guests := []struct{ id, name string }{
		{"ubuntu64Guest", "Ubuntu Linux (64-bit)"},
		{"rhel8_64Guest", "Red Hat Enterprise Linux 8 (64-bit)"},
		{"windows2019srv_64Guest", "Microsoft Windows Server 2019 (64-bit)"},
		{"sles15_64Guest", "SUSE Linux Enterprise 15 (64-bit)"},
		{"debian11_64Guest", "Debian GNU/Linux 11 (64-bit)"},
		{"otherGuest", "Other (32-bit)"},
	}
	cpus := []int32{1, 2, 4, 8, 16}
	memMB := []int32{2048, 4096, 8192, 16384, 32768}
	diskGB := []int64{40, 80, 200, 500, 2000}
	for i, e := range simulator.Map.All("VirtualMachine") {
		vm, ok := e.(*simulator.VirtualMachine)
		if !ok || vm.Config == nil {
			continue
		}
		g := guests[i%len(guests)]
		vm.Config.GuestId, vm.Config.GuestFullName = g.id, g.name
		vm.Summary.Config.GuestId, vm.Summary.Config.GuestFullName = g.id, g.name
		if vm.Guest != nil {
			vm.Guest.GuestId, vm.Guest.GuestFullName = g.id, g.name
		}
		vm.Config.Firmware = "bios"
		if i%6 == 1 {
			vm.Config.Firmware = "efi"
		}
		n, m := cpus[(i/2)%len(cpus)], memMB[(i/3)%len(memMB)]
		vm.Config.Hardware.NumCPU, vm.Config.Hardware.MemoryMB = n, m
		vm.Summary.Config.NumCpu, vm.Summary.Config.MemorySizeMB = n, m
		for _, d := range vm.Config.Hardware.Device {
			if disk, ok := d.(*types.VirtualDisk); ok {
				kb := diskGB[(i/5)%len(diskGB)] * 1024 * 1024
				disk.CapacityInKB, disk.CapacityInBytes = kb, kb*1024
			}
		}
		if vm.Guest != nil && i%3 != 2 {
			gib := diskGB[(i/5)%len(diskGB)] << 30
			vm.Guest.Disk = []types.GuestDiskInfo{
				{DiskPath: "/", Capacity: gib / 4, FreeSpace: gib / 4 * int64(10+i%80) / 100, FilesystemType: "ext4"},
				{DiskPath: "/data", Capacity: gib / 2, FreeSpace: gib / 2 * int64(5+i%60) / 100, FilesystemType: "xfs"},
			}
		}
		if i%4 == 0 {
			vm.Snapshot = snapshots(vm.Self, i)
		}
	}
}

// snapshots is a two-level snapshot tree (a root and one child) for VM number i.
func snapshots(self types.ManagedObjectReference, i int) *types.VirtualMachineSnapshotInfo {
	ref := func(n int) types.ManagedObjectReference {
		return types.ManagedObjectReference{Type: "VirtualMachineSnapshot", Value: fmt.Sprintf("snapshot-%d-%d", i, n)}
	}
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Hour)
	child := types.VirtualMachineSnapshotTree{
		Snapshot: ref(2), Vm: self, Name: "pre-upgrade", Description: "before the upgrade", Id: 2,
		CreateTime: base.Add(48 * time.Hour), State: types.VirtualMachinePowerStatePoweredOn, Quiesced: true,
	}
	root := types.VirtualMachineSnapshotTree{
		Snapshot: ref(1), Vm: self, Name: "base", Description: "", Id: 1,
		CreateTime: base, State: types.VirtualMachinePowerStatePoweredOff,
		ChildSnapshotList: []types.VirtualMachineSnapshotTree{child},
	}
	return &types.VirtualMachineSnapshotInfo{CurrentSnapshot: &child.Snapshot, RootSnapshotList: []types.VirtualMachineSnapshotTree{root}}
}
