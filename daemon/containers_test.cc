// SPDX-License-Identifier: Apache-2.0
// Which container a process runs in: cgroup paths of the runtimes in use, and the runtime's
// state and bundle read from a state directory laid out as runc and containerd lay it out.
#include "containers.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "internal/test_util.h"

namespace shaudit::daemon {
namespace {

const std::string kId(64, 'a');
const std::string kId2 = std::string(63, 'b') + "0";

TEST(Containers, IdFromCgroupPaths) {
  EXPECT_EQ(container_id_from_cgroup("12:pids:/kubepods/besteffort/pod1234/" + kId + "\n"), kId);
  EXPECT_EQ(container_id_from_cgroup("0::/system.slice/docker-" + kId + ".scope\n"), kId);
  EXPECT_EQ(container_id_from_cgroup("0::/kubepods.slice/kubepods-pod1.slice/cri-containerd-" +
                                     kId + ".scope\n"),
            kId);
  EXPECT_EQ(container_id_from_cgroup("3:cpu:/crio-" + kId + ".scope"), kId);
  // Host processes, and ids that are not 64 lower-case hex digits, name no container.
  EXPECT_EQ(container_id_from_cgroup("12:pids:/user.slice/user-0.slice/session-3.scope\n"
                                     "0::/user.slice\n"),
            "");
  EXPECT_EQ(container_id_from_cgroup("1:cpu:/kubepods/" + std::string(64, 'A')), "");
  EXPECT_EQ(container_id_from_cgroup("1:cpu:/kubepods/" + std::string(63, 'a')), "");
  EXPECT_EQ(container_id_from_cgroup("garbage without colons\n::\n"), "");
}

TEST(Containers, PidInItsOwnNamespace) {
  auto ns = ns_pid_of_status("Name:\tbash\nTgid:\t4711\nNSpid:\t4711\t7\nNSpgid:\t4711\t7\n");
  EXPECT_EQ(ns.pid, 7);
  EXPECT_EQ(ns.level, 1u);
  ns = ns_pid_of_status("Name:\tinit\nNSpid:\t900 12 1\n");
  EXPECT_EQ(ns.pid, 1);
  EXPECT_EQ(ns.level, 2u);
  ns = ns_pid_of_status("Name:\tsshd\nNSpid:\t812\n");
  EXPECT_EQ(ns.pid, 812);
  EXPECT_EQ(ns.level, 0u);
  for (const char* bad : {"", "Name:\tx\n", "Name:\tx\nNSpid:\t\n", "Name:\tx\nNSpid:\t12 x\n",
                          "Name:\tx\nNSpid:\t99999999999999999999\n"}) {
    ns = ns_pid_of_status(bad);
    EXPECT_EQ(ns.pid, 0) << bad;
  }
  // This test runs on the host: not a process a container runtime started.
  EXPECT_FALSE(ContainerLookup::started_by_runtime(getpid(), getppid()));
  EXPECT_FALSE(ContainerLookup::started_by_runtime(0, 1));
}

TEST(Containers, ObjectFromCriAndCrioAnnotations) {
  auto c = container_object(kId, "containerd", R"({"ociVersion":"1.0.2","annotations":{
      "io.kubernetes.cri.sandbox-name":"nginx-pod","io.kubernetes.cri.sandbox-namespace":"web",
      "io.kubernetes.cri.container-name":"nginx","io.kubernetes.cri.image-name":"docker.io/library/nginx:1.25",
      "shaudit.io/interposer":"glibc"}})");
  EXPECT_EQ(
      json::encode(c),
      R"({"id":")" + kId +
          R"(","image":"docker.io/library/nginx:1.25","interposer":"glibc","name":"nginx","namespace":"web","pod":"nginx-pod","runtime":"containerd"})");
  auto crio = container_object(kId, "cri-o", R"({"annotations":{"io.kubernetes.pod.name":"p",
      "io.kubernetes.pod.namespace":"n","io.kubernetes.container.name":"c"}})");
  EXPECT_EQ(json::encode(crio),
            R"({"id":")" + kId + R"(","name":"c","namespace":"n","pod":"p","runtime":"cri-o"})");
  // A config.json that does not parse, or carries no annotations: id and runtime only.
  EXPECT_EQ(json::encode(container_object(kId, "runc", "{not json")),
            R"({"id":")" + kId + R"(","runtime":"runc"})");
  EXPECT_EQ(json::encode(container_object(kId, "runc", R"({"annotations":[1]})")),
            R"({"id":")" + kId + R"(","runtime":"runc"})");
}

void write(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

// A state.json as runc writes it: the bundle is a label of its config.
std::string state(const std::string& bundle) {
  return R"({"id":"x","init_process_pid":1,"config":{"rootfs":"/r","labels":["bundle=)" + bundle +
         R"("]}})";
}

TEST(Containers, LookupReadsTheRuntimesStateAndBundle) {
  shaudit::testing::TempDir dir;
  std::filesystem::path root = dir.file("run/runc"), cd = dir.file("run/containerd/runc");
  write(dir.file("bundle1/config.json"),
        R"({"annotations":{"io.kubernetes.cri.sandbox-name":"pod-a"}})");
  write(root / kId / "state.json", state(dir.file("bundle1")));
  write(dir.file("bundle2/config.json"),
        R"({"annotations":{"io.kubernetes.cri.sandbox-name":"pod-b"}})");
  write(cd / "k8s.io" / kId2 / "state.json", state(dir.file("bundle2")));
  ContainerLookup lookup({root.string(), cd.string()});
  auto a = lookup.of_cgroup("1:pids:/kubepods/besteffort/podx/" + kId + "\n");
  ASSERT_TRUE(a);
  EXPECT_EQ(json::encode(*a), R"({"id":")" + kId + R"(","pod":"pod-a","runtime":"runc"})");
  auto b = lookup.of_cgroup("0::/docker-" + kId2 + ".scope");
  ASSERT_TRUE(b);
  EXPECT_EQ(json::encode(*b), R"({"id":")" + kId2 + R"(","pod":"pod-b","runtime":"containerd"})");
  // A container the runtime has no state for yet: named, runtime unknown, asked again later.
  std::string id3(64, 'c');
  auto c = lookup.of_cgroup("1:pids:/x/" + id3);
  ASSERT_TRUE(c);
  EXPECT_EQ(json::encode(*c), R"({"id":")" + id3 + R"(","runtime":"unknown"})");
  write(dir.file("bundle3/config.json"),
        R"({"annotations":{"io.kubernetes.cri.sandbox-name":"c"}})");
  write(root / id3 / "state.json", state(dir.file("bundle3")));
  EXPECT_EQ(json::encode(*lookup.of_cgroup("1:pids:/x/" + id3)),
            R"({"id":")" + id3 + R"(","pod":"c","runtime":"runc"})");
  EXPECT_FALSE(lookup.of_cgroup("0::/user.slice\n"));
}

TEST(Containers, ContainerdIsKnownByItsShimsBundleWhereverItsRuncStateIs) {
  // containerd's runc v2 shim with its runc root elsewhere (runc options' Root, `ctr run
  // --runc-root`): the state root's name says nothing, the bundle's place does.
  shaudit::testing::TempDir dir;
  std::filesystem::path root = dir.file("var/k8s-runc");
  std::string bundle = dir.file("state/io.containerd.runtime.v2.task/k8s.io/" + kId);
  write(bundle + "/config.json", R"({"annotations":{"io.kubernetes.cri.sandbox-name":"p"}})");
  write(root / "k8s.io" / kId / "state.json", state(bundle));
  ContainerLookup lookup({root.string()});
  auto c = lookup.of_cgroup("1:pids:/k8s.io/" + kId + "\n");
  ASSERT_TRUE(c);
  EXPECT_EQ(json::encode(*c), R"({"id":")" + kId + R"(","pod":"p","runtime":"containerd"})");

  EXPECT_EQ(runtime_of_container("/run/x", "/run/containerd/io.containerd.runtime.v1.linux/moby/x"),
            "containerd");
  // Otherwise the state root names it, as before.
  EXPECT_EQ(runtime_of_container("/run/containerd/runc", "/b"), "containerd");
  EXPECT_EQ(runtime_of_container("/run/crio/runc", "/b"), "cri-o");
  EXPECT_EQ(runtime_of_container("/run/runc", "/srv/bundles/x"), "runc");
  EXPECT_EQ(runtime_of_container("/run/runc", "/srv/io.containerd.runtime.v2.taskx/x"), "runc");
}

}  // namespace
}  // namespace shaudit::daemon
