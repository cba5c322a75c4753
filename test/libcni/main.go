// cnitool-lite: drives CNI plugins through libcni, the library containerd and CRI-O use (Debian's
// golang-github-appc-cni-dev 1.1.x), so tests see podwire exactly as those runtimes do: libcni builds each
// plugin's config, passes prevResult along the chain, caches results for DEL, and parses every result
// into its own Go types (the printed "type" shows which).
//
//	cnitool-lite add|check|del CONFLIST NETNS CONTAINERID [RUNTIMECONFIG_JSON]
//	cnitool-lite gc CONFLIST VALID_ATTACHMENTS_JSON
//	cnitool-lite status CONFLIST
//
// Env: CNI_PATH (plugin dirs, ':'-separated), LIBCNI_CACHE (libcni's result cache dir).
// libcni 1.1.x has no GC or STATUS calls (they arrived in libcni 1.2), so those go through its exec
// layer (pkg/invoke), which is what libcni 1.2's GCNetworkList and GetStatusNetworkList use.
// Output: one JSON object on stdout; errors: {"error": "..."} and exit 1.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	current "github.com/containernetworking/cni/pkg/types/100"
)

func out(v interface{}) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

func fail(err error) {
	out(map[string]string{"error": err.Error()})
	os.Exit(1)
}

// pluginConf is what libcni would send to one plugin of the list for GC or STATUS.
func pluginConf(list *libcni.NetworkConfigList, p *libcni.NetworkConfig, extra map[string]interface{}) []byte {
	var m map[string]interface{}
	if err := json.Unmarshal(p.Bytes, &m); err != nil {
		fail(err)
	}
	m["name"] = list.Name
	m["cniVersion"] = list.CNIVersion
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return b
}

func main() {
	if len(os.Args) < 3 {
		fail(fmt.Errorf("usage: cnitool-lite add|check|del|gc|status CONFLIST ..."))
	}
	cmd := os.Args[1]
	list, err := libcni.ConfListFromFile(os.Args[2])
	if err != nil {
		fail(err)
	}
	path := filepath.SplitList(os.Getenv("CNI_PATH"))
	cni := libcni.NewCNIConfigWithCacheDir(path, os.Getenv("LIBCNI_CACHE"), nil)
	ctx := context.Background()

	switch cmd {
	case "add", "check", "del":
		if len(os.Args) < 5 {
			fail(fmt.Errorf("usage: cnitool-lite %s CONFLIST NETNS CONTAINERID [RUNTIMECONFIG_JSON]", cmd))
		}
		rt := &libcni.RuntimeConf{ContainerID: os.Args[4], NetNS: os.Args[3], IfName: "eth0",
			Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAME", "libcni-pod"}}}
		if len(os.Args) > 5 {
			if err := json.Unmarshal([]byte(os.Args[5]), &rt.CapabilityArgs); err != nil {
				fail(err)
			}
		}
		switch cmd {
		case "add":
			res, err := cni.AddNetworkList(ctx, list, rt)
			if err != nil {
				fail(err)
			}
			cur, err := current.NewResultFromResult(res)
			if err != nil {
				fail(err)
			}
			ips := []string{}
			for _, ip := range cur.IPs {
				ips = append(ips, ip.Address.String())
			}
			out(map[string]interface{}{"type": fmt.Sprintf("%T", res), "version": res.Version(), "ips": ips, "interfaces": len(cur.Interfaces), "result": res})
		case "check":
			if err := cni.CheckNetworkList(ctx, list, rt); err != nil {
				fail(err)
			}
			out(map[string]bool{"ok": true})
		case "del":
			if err := cni.DelNetworkList(ctx, list, rt); err != nil {
				fail(err)
			}
			out(map[string]bool{"ok": true})
		}
	case "gc", "status":
		extra := map[string]interface{}{}
		if cmd == "gc" {
			var valid []map[string]string
			if len(os.Args) < 4 || json.Unmarshal([]byte(os.Args[3]), &valid) != nil {
				fail(fmt.Errorf("usage: cnitool-lite gc CONFLIST '[{\"containerID\":...,\"ifname\":...}]'"))
			}
			extra["cni.dev/valid-attachments"] = valid
		}
		for _, p := range list.Plugins {
			bin, err := invoke.FindInPath(p.Network.Type, path)
			if err != nil {
				fail(err)
			}
			args := &invoke.Args{Command: strings.ToUpper(cmd), Path: strings.Join(path, ":")}
			if err := invoke.ExecPluginWithoutResult(ctx, bin, pluginConf(list, p, extra), args, nil); err != nil {
				fail(err)
			}
		}
		out(map[string]bool{"ok": true})
	default:
		fail(fmt.Errorf("unknown command %q", cmd))
	}
}
