//! The per-request context, the coroutine scheduler, the phase-permission
//! checks, waits, the output path and the engines (cosockets, captures,
//! semaphores, regex cache).

pub mod balancer;
pub mod body_wait;
pub mod capture;
pub mod chunked;
pub mod client_abort;
pub mod context;
pub mod ctx;
pub mod lent_out;
pub mod need_body;
pub mod output;
pub mod pipe;
pub mod pipe_reap;
pub mod proxy_ssl;
pub mod regex_cache;
pub mod request_vm;
pub mod run_sync;
pub mod scheduler;
pub mod semaphore;
pub mod socket_pool;
pub mod ssl_ctx;
pub mod ssl_hs;
pub mod tcp_sock;
pub mod tcp_tls;
pub mod tcp_tls_peer;
pub mod thread_buf;
pub mod timer;
pub mod timer_wait;
pub mod worker_thread;
pub mod write_wait;
