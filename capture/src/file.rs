//! pcap/pcapng reading (to be written).
