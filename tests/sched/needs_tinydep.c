/* Exits 0 only when libktstr_tinydep.so was found and loaded. */
int ktstr_tinydep_answer(void);

int main(void)
{
	return ktstr_tinydep_answer() == 42 ? 0 : 1;
}
