//! Controllers: deployments, replica sets, the scheduler, endpoints, garbage collection.
