//! kselftest TAP writer and KTAP/TAP parser.
