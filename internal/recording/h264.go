package recording

import "encoding/binary"

// H.264 NAL unit types used here (ITU-T H.264 table 7-1).
const (
	naluIDR = 5
	naluSPS = 7
	naluPPS = 8
)

// h264Frame reads an access unit in AVC form (each NAL unit after a
// 4-byte big-endian length, as pion's H264Packet{IsAVC: true} gives it
// and Matroska's V_MPEG4/ISO/AVC stores it): whether it holds an IDR
// picture (a keyframe), and the first SPS and PPS it carries. A
// malformed length ends the walk: what came before stands.
func h264Frame(d []byte) (key bool, sps, pps []byte) {
	for len(d) >= 4 {
		n := binary.BigEndian.Uint32(d)
		if n == 0 || uint64(n) > uint64(len(d)-4) {
			break
		}
		nal := d[4 : 4+n]
		switch nal[0] & 0x1f {
		case naluIDR:
			key = true
		case naluSPS:
			if sps == nil {
				sps = nal
			}
		case naluPPS:
			if pps == nil {
				pps = nal
			}
		}
		d = d[4+n:]
	}
	return key, sps, pps
}

// avcConfig builds the AVCDecoderConfigurationRecord (ISO/IEC 14496-15
// 5.2.4.1) Matroska wants as an AVC track's CodecPrivate: the profile
// and level from the SPS, 4-byte NAL lengths, one SPS and one PPS.
func avcConfig(sps, pps []byte) []byte {
	b := make([]byte, 0, 11+len(sps)+len(pps))
	b = append(b, 1, sps[1], sps[2], sps[3], 0xff, 0xe1)
	b = binary.BigEndian.AppendUint16(b, uint16(len(sps)))
	b = append(b, sps...)
	b = append(b, 1)
	b = binary.BigEndian.AppendUint16(b, uint16(len(pps)))
	return append(b, pps...)
}

// spsSize reads the picture size from an SPS NAL unit (H.264 7.3.2.1.1),
// cropping applied; 0, 0 when the SPS is cut short or makes no sense.
func spsSize(sps []byte) (int, int) {
	if len(sps) < 4 {
		return 0, 0
	}
	// Remove emulation prevention bytes (00 00 03 -> 00 00).
	rbsp := make([]byte, 0, len(sps))
	zeros := 0
	for _, c := range sps[1:] {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
		rbsp = append(rbsp, c)
	}
	r := bitReader{b: rbsp}
	profile := r.bits(8)
	r.bits(16) // constraint flags, level_idc
	r.ue()     // seq_parameter_set_id
	chroma := uint32(1)
	switch profile {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		chroma = r.ue()
		if chroma == 3 {
			if r.bits(1) == 1 { // separate_colour_plane_flag
				chroma = 0 // ChromaArrayType
			}
		}
		r.ue()              // bit_depth_luma_minus8
		r.ue()              // bit_depth_chroma_minus8
		r.bits(1)           // qpprime_y_zero_transform_bypass_flag
		if r.bits(1) == 1 { // seq_scaling_matrix_present_flag
			lists := 8
			if chroma == 3 {
				lists = 12
			}
			for i := range lists {
				if r.bits(1) == 0 {
					continue
				}
				size := 16
				if i >= 6 {
					size = 64
				}
				last, next := int32(8), int32(8)
				for range size {
					if next != 0 {
						next = (last + r.se() + 256) % 256
					}
					if next != 0 {
						last = next
					}
				}
			}
		}
	}
	r.ue()          // log2_max_frame_num_minus4
	switch r.ue() { // pic_order_cnt_type
	case 0:
		r.ue()
	case 1:
		r.bits(1)
		r.se()
		r.se()
		n := r.ue()
		for i := uint32(0); i < n && !r.over; i++ {
			r.se()
		}
	}
	r.ue()    // max_num_ref_frames
	r.bits(1) // gaps_in_frame_num_value_allowed_flag
	wMBs, hMaps := r.ue()+1, r.ue()+1
	frameMBsOnly := r.bits(1)
	if frameMBsOnly == 0 {
		r.bits(1) // mb_adaptive_frame_field_flag
	}
	r.bits(1) // direct_8x8_inference_flag
	var cl, cr, ct, cb uint32
	if r.bits(1) == 1 {
		cl, cr, ct, cb = r.ue(), r.ue(), r.ue(), r.ue()
	}
	if r.over || wMBs > 1<<12 || hMaps > 1<<12 {
		return 0, 0
	}
	ux, uy := uint32(1), 2-frameMBsOnly
	switch chroma {
	case 1:
		ux, uy = 2, 2*(2-frameMBsOnly)
	case 2:
		ux = 2
	}
	w := int64(wMBs)*16 - int64(cl+cr)*int64(ux)
	h := int64(2-frameMBsOnly)*int64(hMaps)*16 - int64(ct+cb)*int64(uy)
	if w <= 0 || h <= 0 {
		return 0, 0
	}
	return int(w), int(h)
}

// ue reads an unsigned Exp-Golomb code (H.264 9.1).
func (r *bitReader) ue() uint32 {
	lz := 0
	for r.bits(1) == 0 {
		if r.over || lz >= 31 {
			r.over = true
			return 0
		}
		lz++
	}
	return (1<<lz - 1) + r.bits(lz)
}

// se reads a signed Exp-Golomb code.
func (r *bitReader) se() int32 {
	k := r.ue()
	if k&1 == 1 {
		return int32((k + 1) / 2)
	}
	return -int32(k / 2)
}
