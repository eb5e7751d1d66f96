//! The web console for the people on duty (issue 28). This first slice is its edge behind an
//! Application Load Balancer: `alb` verifies the `x-amzn-oidc-data` token the load balancer
//! adds after OIDC sign-in, and nothing else is believed of that header.

pub mod alb;
