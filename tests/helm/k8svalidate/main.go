// Command k8svalidate strictly decodes every manifest of a multi-document YAML stream (stdin)
// into the Kubernetes API type its apiVersion/kind names: an unknown field, a wrong type or an
// unknown kind is an error. It is how the chart tests validate rendered manifests against the
// Kubernetes schemas without a cluster or a network.
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

func target(tm typeMeta) (interface{}, bool) {
	switch tm.APIVersion + "/" + tm.Kind {
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, true
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}, true
	case "v1/Service":
		return &corev1.Service{}, true
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}, true
	case "v1/PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}, true
	case "batch/v1/Job":
		return &batchv1.Job{}, true
	case "networking.k8s.io/v1/NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, true
	// prometheus-operator's CRDs, with the Go types their schemas are generated from.
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return &monitoringv1.ServiceMonitor{}, true
	case "monitoring.coreos.com/v1/PrometheusRule":
		return &monitoringv1.PrometheusRule{}, true
	}
	return nil, false
}

func main() {
	data, err := io.ReadAll(bufio.NewReader(os.Stdin))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	failed, checked := 0, 0
	for _, doc := range bytes.Split(data, []byte("\n---")) {
		if len(strings.TrimSpace(stripComments(string(doc)))) == 0 {
			continue
		}
		var tm typeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			fmt.Printf("unreadable document: %v\n", err)
			failed++
			continue
		}
		obj, known := target(tm)
		if !known {
			fmt.Printf("%s/%s: kind not known to this validator\n", tm.APIVersion, tm.Kind)
			failed++
			continue
		}
		checked++
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			fmt.Printf("%s %s: %v\n", tm.APIVersion, tm.Kind, err)
			failed++
		}
	}
	fmt.Printf("checked %d manifests, %d invalid\n", checked, failed)
	if failed > 0 || checked == 0 {
		os.Exit(1)
	}
}

func stripComments(s string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
