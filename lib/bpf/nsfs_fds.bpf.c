// SPDX-License-Identifier: MIT OR GPL-2.0-only
// The open fds of every process that are nsfs files (a namespace held open), found in one pass
// over the kernel's tasks (a task_file iterator, Linux >= 5.8) instead of one readlink per fd of
// every /proc/PID/fd. Only a hint: pidnsd confirms each record through /proc (nsfs_fd_iter.h).
//
// The kernel's types are declared here with CO-RE relocations (preserve_access_index): libbpf
// fits the field offsets to the running kernel's BTF, so one object serves 5.8 to 6.18.
typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define NSFS_MAGIC 0x6e736673

struct super_block {
    unsigned long s_magic;
} __attribute__((preserve_access_index));
struct inode {
    struct super_block *i_sb;
    unsigned long i_ino;
} __attribute__((preserve_access_index));
struct file {
    struct inode *f_inode;
} __attribute__((preserve_access_index));
struct files_struct;
struct task_struct {
    int tgid;
    struct task_struct *group_leader;
    struct files_struct *files;
} __attribute__((preserve_access_index));
struct seq_file;
struct bpf_iter_meta {
    struct seq_file *seq;
} __attribute__((preserve_access_index));
struct bpf_iter__task_file {
    struct bpf_iter_meta *meta;
    struct task_struct *task;
    __u32 fd;
    struct file *file;
} __attribute__((preserve_access_index));

// One record per nsfs fd; its layout is NsfsFdRecord's (nsfs_fd_iter.h).
struct record {
    __s32 tgid;
    __s32 fd;
    __u64 inode;
};

SEC("iter/task_file")
int nsfs_fds(struct bpf_iter__task_file *ctx) {
    struct task_struct *task = ctx->task;
    struct file *file = ctx->file;
    if (!task || !file) return 0;
    // The group's fd table only (what /proc/PID/fd shows, or a live thread's when the leader
    // exited): a thread that unshared its table (CLONE_FILES left out) holds its own.
    struct task_struct *leader = task->group_leader;
    if (leader && leader->files && task->files != leader->files) return 0;
    struct inode *inode = file->f_inode;
    if (!inode) return 0;
    struct super_block *sb = inode->i_sb;
    if (!sb || sb->s_magic != NSFS_MAGIC) return 0;
    struct record r = {task->tgid, (__s32)ctx->fd, inode->i_ino};
    bpf_seq_write(ctx->meta->seq, &r, sizeof r);
    return 0;
}

// GPL-compatible, as bpf_seq_write requires.
char LICENSE[] SEC("license") = "Dual MIT/GPL";
