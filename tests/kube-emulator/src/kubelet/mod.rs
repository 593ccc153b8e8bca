//! The kubelet: runs the pods bound to the node.
