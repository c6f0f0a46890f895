/* recvmmsg(2) for the SRT listener (issue 21): many datagrams per system call.
 *
 * The pure-Python twin is server/ingest/srt_udp.py:_receive_pure (a loop of
 * sock.recvfrom); both return the same list of (bytes, address) pairs, the address
 * in the socket module's form ((host, port) for IPv4, (host, port, flowinfo,
 * scope_id) for IPv6), so the listener cannot tell them apart. Built by setup.py
 * when a C compiler is present; optional, the package works without it.
 *
 * receive(fd, limit) -> list: at most `limit` datagrams already queued on the
 * non-blocking socket `fd`; an empty list when none is (EAGAIN). An error with
 * nothing read yet raises OSError (as recvfrom would); after some datagrams the
 * error is left for the next call, as recvmmsg itself does.
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE
#include <Python.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#define VLEN 64        /* datagrams per system call */
#define DGRAM_MAX 2048 /* above SRT's 1500-byte MTU: a longer datagram is truncated */

static char buffers[VLEN][DGRAM_MAX];
static struct sockaddr_storage addrs[VLEN];
static struct iovec iovs[VLEN];
static struct mmsghdr msgs[VLEN];

static PyObject *address(const struct sockaddr_storage *storage)
{
    char host[INET6_ADDRSTRLEN];
    if (storage->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)storage;
        if (inet_ntop(AF_INET, &a->sin_addr, host, sizeof host) == NULL)
            return PyErr_SetFromErrno(PyExc_OSError);
        return Py_BuildValue("(si)", host, (int)ntohs(a->sin_port));
    }
    if (storage->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)storage;
        if (inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host) == NULL)
            return PyErr_SetFromErrno(PyExc_OSError);
        return Py_BuildValue("(siII)", host, (int)ntohs(a->sin6_port),
                             (unsigned int)ntohl(a->sin6_flowinfo),
                             (unsigned int)a->sin6_scope_id);
    }
    PyErr_Format(PyExc_OSError, "address family %d", (int)storage->ss_family);
    return NULL;
}

/* The address object of the previous datagram is reused when the sender is the same
 * (a burst from one caller): the listener compares it with the connection's peer. */
static PyObject *
append_batch(PyObject *out, int count, struct sockaddr_storage *last, PyObject **last_obj)
{
    for (int i = 0; i < count; i++) {
        socklen_t alen = msgs[i].msg_hdr.msg_namelen;
        PyObject *addr;
        if (*last_obj != NULL && alen <= sizeof *last && memcmp(last, &addrs[i], alen) == 0) {
            addr = *last_obj;
            Py_INCREF(addr);
        } else {
            addr = address(&addrs[i]);
            if (addr == NULL)
                return NULL;
            Py_XDECREF(*last_obj);
            Py_INCREF(addr);
            *last_obj = addr;
            memcpy(last, &addrs[i], alen <= sizeof *last ? alen : sizeof *last);
        }
        unsigned int len = msgs[i].msg_len;
        if (len > DGRAM_MAX)
            len = DGRAM_MAX;
        PyObject *data = PyBytes_FromStringAndSize(buffers[i], (Py_ssize_t)len);
        if (data == NULL) {
            Py_DECREF(addr);
            return NULL;
        }
        PyObject *pair = PyTuple_New(2);
        if (pair == NULL) {
            Py_DECREF(data);
            Py_DECREF(addr);
            return NULL;
        }
        PyTuple_SET_ITEM(pair, 0, data);
        PyTuple_SET_ITEM(pair, 1, addr);
        int failed = PyList_Append(out, pair);
        Py_DECREF(pair);
        if (failed)
            return NULL;
    }
    return out;
}

static PyObject *receive(PyObject *self, PyObject *args)
{
    int fd;
    Py_ssize_t limit;
    (void)self;
    if (!PyArg_ParseTuple(args, "in", &fd, &limit))
        return NULL;
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    struct sockaddr_storage last;
    PyObject *last_obj = NULL;
    memset(&last, 0, sizeof last);
    while (PyList_GET_SIZE(out) < limit) {
        Py_ssize_t want = limit - PyList_GET_SIZE(out);
        unsigned int vlen = want < VLEN ? (unsigned int)want : VLEN;
        for (unsigned int i = 0; i < vlen; i++) {
            iovs[i].iov_base = buffers[i];
            iovs[i].iov_len = DGRAM_MAX;
            memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
            msgs[i].msg_hdr.msg_name = &addrs[i];
            msgs[i].msg_hdr.msg_namelen = sizeof addrs[i];
            msgs[i].msg_hdr.msg_iov = &iovs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        /* never blocks (MSG_DONTWAIT); the GIL stays held: the buffers are static */
        int got = recvmmsg(fd, msgs, vlen, MSG_DONTWAIT, NULL);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK || PyList_GET_SIZE(out) > 0)
                break;
            Py_XDECREF(last_obj);
            Py_DECREF(out);
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        if (append_batch(out, got, &last, &last_obj) == NULL) {
            Py_XDECREF(last_obj);
            Py_DECREF(out);
            return NULL;
        }
        if ((unsigned int)got < vlen)
            break; /* the queue is drained: spare the system call that would say so */
    }
    Py_XDECREF(last_obj);
    return out;
}

static PyMethodDef methods[] = {
    {"receive", receive, METH_VARARGS,
     "receive(fd, limit) -> list of (bytes, address): the datagrams queued on fd."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "server.ingest._srt_mmsg", NULL, -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__srt_mmsg(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddIntConstant(m, "VERSION", 1) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
